"""Creating sandbox cgroups and removing their shared parent, without racing each other.

Every sandbox's cgroup lives under one parent (``agentos``) in every hierarchy. A runtime
making a sandbox creates that parent if it is missing, then writes into it; a sandbox
being deleted removes the parent once it is empty. Between two processes (the kernel and
a one-shot ``agentos sandbox run``), or two sandboxes of one, the removal could land in
the middle of a creation. So: creators hold a host-wide lock shared; removing the parent
takes it exclusively, and only if nobody is creating (it never waits: a later deletion
or the next reconcile removes the parent instead).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from sandbox.cgroups import CgroupManager

__all__ = ["LOCK_PATH", "creating_cgroups", "remove_parent_if_idle"]

LOCK_PATH = Path("/run/lock/agentos-cgroups.lock")


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextlib.asynccontextmanager
async def creating_cgroups(path: Path = LOCK_PATH) -> AsyncIterator[None]:
    """Hold the lock shared while a runtime makes a sandbox's cgroups."""
    fd = _open(path)
    try:
        await trio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_parent_if_idle(cgroups: CgroupManager, parent: str, path: Path = LOCK_PATH) -> bool:
    """Remove the empty parent cgroup unless a sandbox is being created; True if removed."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        cgroups.remove_if_empty(parent)
        return True
    finally:
        os.close(fd)
