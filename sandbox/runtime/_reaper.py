"""Waiting for a container's init, which is not our child until we make it one.

``runc create`` forks the container's init and exits; the orphaned init is reparented to
the nearest *child subreaper*. A process that runs sandboxes declares itself one
(prctl(PR_SET_CHILD_SUBREAPER)), so inits become its children; then a pidfd tells trio
when one exits, and waitid(P_PIDFD) reaps it and gives its status.

When an init dies its pid namespace collapses, and the processes still in it are killed
and reparented to us too. :func:`reap_orphans` reaps those, by the sandbox's own uid, so
that they never pile up as zombies and no child of anyone else is touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

import trio

from sandbox.runtime._types import ExitStatus

__all__ = ["become_subreaper", "reap_orphans", "wait_for_exit"]

_PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def become_subreaper() -> None:
    """Make this process adopt its orphaned descendants (idempotent).

    Raises:
        OSError: the kernel refused.
    """
    if _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _status_fields(pid_dir: Path) -> dict[str, str]:
    fields = {}
    for line in (pid_dir / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def reap_orphans(uid: int) -> tuple[int, int]:
    """Reap our zombie children that ran as ``uid``.

    Returns:
        (reaped, still_running): zombies reaped, and our children of that uid that have
        not exited yet.
    """
    me = str(os.getpid())
    reaped = running = 0
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            fields = _status_fields(pid_dir)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields.get("PPid") != me or fields.get("Uid", "").split()[:1] != [str(uid)]:
            continue
        if fields.get("State", "").startswith("Z"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(pid_dir.name), os.WNOHANG)
                reaped += 1
        else:
            running += 1
    return reaped, running


async def wait_for_exit(pid: int) -> ExitStatus:
    """Wait for ``pid`` (our child, or adopted) to exit, reap it, and return its status.

    Raises:
        ProcessLookupError: no such process.
        ChildProcessError: it is not our child (we are not its subreaper).
    """
    fd = os.pidfd_open(pid)
    try:
        await trio.lowlevel.wait_readable(fd)
        result = os.waitid(os.P_PIDFD, fd, os.WEXITED)  # noqa: ASYNC222 - it has exited: no wait
    finally:
        os.close(fd)
    if result is None:  # pragma: no cover - WNOHANG was not given
        msg = f"process {pid} reported no exit"
        raise ChildProcessError(msg)
    if result.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return ExitStatus(signal=result.si_status)
    return ExitStatus(code=result.si_status)
