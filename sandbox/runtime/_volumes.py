"""A sandbox's private /data: a directory, or with a quota, a loop-mounted ext4 image.

The quota is the size of a filesystem made for this sandbox alone, so it holds whatever
the process does (many small files, one big one, sparse files written in full). Making
and mounting one takes a few milliseconds; unmounting frees its loop device.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

import trio

from sandbox.errors import FailedPreconditionError

__all__ = ["VolumeError", "make_data_volume", "remove_data_volume"]

_TIMEOUT = 30.0


class VolumeError(FailedPreconditionError):
    """A /data volume could not be made or removed."""


async def _run(*argv: str) -> None:
    with trio.fail_after(_TIMEOUT):
        result = await trio.run_process(
            list(argv), capture_stdout=True, capture_stderr=True, check=False
        )
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).decode(errors="replace").strip()
        msg = f"{argv[0]} failed: {reason or f'exit status {result.returncode}'}"
        raise VolumeError(msg)


async def make_data_volume(bundle: Path, *, uid: int, gid: int, quota: int | None) -> Path:
    """Make ``bundle/data`` owned by the sandbox, holding at most ``quota`` bytes if set."""
    mountpoint = bundle / "data"
    mountpoint.mkdir(mode=0o700)
    if quota is not None:
        image = bundle / "data.img"
        with image.open("wb") as file:
            file.truncate(quota)  # sparse: takes disk only as the sandbox writes
        await _run(
            "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
            "-E", f"root_owner={uid}:{gid},nodiscard,lazy_itable_init=1", os.fspath(image),
        )  # fmt: skip
        await _run(
            "mount", "-o", "loop,nosuid,nodev,noatime", os.fspath(image), os.fspath(mountpoint)
        )
        with contextlib.suppress(FileNotFoundError):
            (mountpoint / "lost+found").rmdir()
    os.chown(mountpoint, uid, gid)
    mountpoint.chmod(0o700)
    return mountpoint


async def remove_data_volume(bundle: Path) -> None:
    """Unmount (if mounted) and delete a sandbox's /data and its image."""
    mountpoint = bundle / "data"
    if await trio.Path(mountpoint).is_mount():
        await _run("umount", os.fspath(mountpoint))
    with contextlib.suppress(FileNotFoundError):
        (bundle / "data.img").unlink()
    if mountpoint.exists():
        try:
            await trio.to_thread.run_sync(shutil.rmtree, mountpoint)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                msg = f"cannot remove {mountpoint}: {exc.strerror}"
                raise VolumeError(msg) from exc
