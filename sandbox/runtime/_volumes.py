"""A sandbox's /data: a directory, or with a quota, a loop-mounted ext4 image.

Private to one sandbox (removed with it), or shared by an app's sandboxes (it stays).

The quota is the size of a filesystem made for this sandbox alone, so it holds whatever
the process does (many small files, one big one, sparse files written in full). Making
and mounting one takes a few milliseconds; unmounting frees its loop device.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import struct
from pathlib import Path

import trio

from sandbox.errors import FailedPreconditionError

__all__ = [
    "VolumeError",
    "close_shared_volume",
    "make_data_volume",
    "open_shared_volume",
    "remove_data_volume",
]

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


# ---------------------------------------------------------------- shared volumes
#
# A shared volume outlives the sandboxes that use it: an app's own files, shown at /data
# in each of its containers. Each container runs as its own uid, so the volume belongs to
# a group they all have as a supplementary group: its root is root:<gid>, mode 2770
# (setgid, so whatever is made inside belongs to the group), with a default ACL granting
# the group what the owner has, whatever the creating process's umask.

_ACL_XATTR = "system.posix_acl_default"
_ACL_VERSION = 2
_ACL_UNDEFINED_ID = 0xFFFFFFFF
_USER_OBJ, _GROUP_OBJ, _OTHER = 0x01, 0x04, 0x20
_RWX = 0o7


def _group_default_acl() -> bytes:
    """``u::rwx,g::rwx,o::---`` in the kernel's xattr form (linux/posix_acl_xattr.h)."""
    entries = ((_USER_OBJ, _RWX), (_GROUP_OBJ, _RWX), (_OTHER, 0))
    return struct.pack("<I", _ACL_VERSION) + b"".join(
        struct.pack("<HHI", tag, perm, _ACL_UNDEFINED_ID) for tag, perm in entries
    )


def _is_shared(directory: Path, gid: int) -> bool:
    info = directory.stat()
    return info.st_gid == gid and bool(info.st_mode & stat.S_ISGID)


def _give_to_group(path: Path, gid: int) -> None:
    """The group gets what the owner has; a directory passes its group on (setgid)."""
    info = path.lstat()
    os.lchown(path, -1, gid)
    if stat.S_ISLNK(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode) & 0o777
    mode = (mode & ~0o070) | ((mode & 0o700) >> 3)
    if stat.S_ISDIR(info.st_mode):
        path.chmod(mode | stat.S_ISGID)
        os.setxattr(path, _ACL_XATTR, _group_default_acl())
    else:
        path.chmod(mode)


def _share_with_group(directory: Path, gid: int) -> None:
    """Make ``directory`` the group's; what it holds too, if it was not the group's yet."""
    adopt = not _is_shared(directory, gid)
    try:
        os.chown(directory, 0, gid)
        directory.chmod(0o2770)
        os.setxattr(directory, _ACL_XATTR, _group_default_acl())
        if adopt:  # made before it was shared (by the kernel, or copied in): give it over
            for top, dirs, files in os.walk(directory):
                for name in (*dirs, *files):
                    _give_to_group(Path(top, name), gid)
    except OSError as exc:
        msg = f"cannot share {directory} with group {gid}: {exc.strerror} (POSIX ACLs needed)"
        raise VolumeError(msg) from exc


def _has_files(directory: Path) -> bool:
    return any(directory.iterdir())


def _remove_contents(directory: Path) -> None:
    for child in list(directory.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


async def _mount_image(image: Path, mountpoint: Path) -> None:
    await _run("mount", "-o", "loop,nosuid,nodev,noatime", os.fspath(image), os.fspath(mountpoint))
    with contextlib.suppress(OSError):  # mkfs's, empty; one the volume's users made stays
        await trio.Path(mountpoint / "lost+found").rmdir()


async def _make_image(image: Path, size: int, gid: int) -> None:
    """A sparse ext4 image of ``size`` bytes whose root is root:``gid``."""
    partial = trio.Path(image.with_name(image.name + ".partial"))
    await trio.Path(image.parent).mkdir(mode=0o700, parents=True, exist_ok=True)
    async with await partial.open("wb") as file:
        await file.truncate(size)
    try:
        await _run(
            "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
            "-E", f"root_owner=0:{gid},nodiscard,lazy_itable_init=1", os.fspath(partial),
        )  # fmt: skip
    except BaseException:
        await partial.unlink(missing_ok=True)
        raise
    await partial.rename(image)  # only a whole filesystem ever has the image's name


async def _move_into_image(directory: Path, image: Path) -> None:
    """Move what ``directory`` holds into the (unmounted) ``image``; nothing lost on failure."""
    staging = image.with_name(image.name + ".mnt")
    await trio.Path(staging).mkdir(mode=0o700, exist_ok=True)
    await _mount_image(image, staging)
    try:
        await _run("cp", "-a", "--", f"{directory}/.", f"{staging}/")
    except VolumeError as exc:
        await _run("umount", os.fspath(staging))
        await trio.Path(image).unlink()
        msg = f"the files in {directory} do not fit in a volume of its quota: {exc}"
        raise VolumeError(msg) from exc
    await _run("umount", os.fspath(staging))
    await trio.Path(staging).rmdir()
    await trio.to_thread.run_sync(_remove_contents, directory)  # copied: the originals go


async def _mount_volume(directory: Path, image: Path, gid: int, quota: int | None) -> None:
    has_files = await trio.to_thread.run_sync(_has_files, directory)
    if not await trio.Path(image).exists():
        if quota is None:
            msg = f"{image} does not exist, and no quota says how big to make it"
            raise VolumeError(msg)
        await _make_image(image, quota, gid)
        if has_files:
            await _move_into_image(directory, image)
    elif has_files:
        msg = f"{directory} has files of its own under its volume {image}"
        raise VolumeError(msg)
    await _mount_image(image, directory)


async def open_shared_volume(
    directory: Path, *, gid: int, image: Path | None = None, quota: int | None = None
) -> int | None:
    """Make ``directory`` a volume shared by the group ``gid``, persistent across sandboxes.

    With an ``image``, the volume is that ext4 image, loop-mounted at ``directory``: made
    of ``quota`` bytes the first time (the files already in ``directory`` moved into it),
    mounted again as it is later. Without one, or with neither image nor quota, it is
    the directory itself. Opening an open volume changes nothing.

    Returns:
        The volume's size in bytes when it is an image, else None.

    Raises:
        VolumeError: the image could not be made or mounted, the files already there do
            not fit in the quota, or the filesystem cannot share with a group (no ACLs).
    """
    await trio.Path(directory).mkdir(mode=0o2770, parents=True, exist_ok=True)
    size: int | None = None
    if image is not None and (quota is not None or await trio.Path(image).exists()):
        if not await trio.Path(directory).is_mount():
            await _mount_volume(directory, image, gid, quota)
        size = (await trio.Path(image).stat()).st_size
    await trio.to_thread.run_sync(_share_with_group, directory, gid)
    return size


async def close_shared_volume(directory: Path) -> None:
    """Unmount a shared volume's image (its files stay in the image); absent is fine."""
    if await trio.Path(directory).is_mount():
        await _run("umount", os.fspath(directory))
