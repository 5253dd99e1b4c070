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
import logging
import os
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import trio

from sandbox.cgroups import CgroupError, CgroupManager

logger = logging.getLogger(__name__)

__all__ = ["LOCK_PATH", "creating_cgroups", "remove_parent_if_idle", "remove_stale_children"]

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


def remove_stale_children(
    cgroups: CgroupManager, parent: str, live: Collection[str], path: Path = LOCK_PATH
) -> list[str]:
    """Remove the empty cgroups below ``parent`` not named in ``live``; the names removed.

    An engine that died with its containers leaves their cgroups behind; nothing runs in
    them, but they stay until removed. Only empty ones go, and only while nobody is
    creating (a cgroup just made is empty until its process joins), so this never touches
    a sandbox that is running or being made.
    """
    fd = _open(path)
    removed: list[str] = []
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return removed
        for name in cgroups.children(parent):
            if name.rsplit("/", 1)[1] in live:
                continue
            cgroup = cgroups.cgroup(name)
            if cgroup.pids():
                continue
            try:
                cgroup.delete()
            except CgroupError as exc:
                logger.warning("left the stale cgroup %s: %s", name, exc)
            else:
                removed.append(name)
        return removed
    finally:
        os.close(fd)
