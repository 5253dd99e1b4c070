"""The kernel as a trio service: prepare the data directory, serve the admin socket, clean up."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import trio

from kernel.client import DataLayout, KernelRecord, read_kernel_record, write_kernel_record
from kernel.config import KernelSettings
from kernel.core import Kernel
from kernel.server import bind_admin_socket, serve_admin_socket
from kernel.vfs import AppRoots, LocalFS, VPath
from sandbox import installed_version
from sandbox.errors import AgentOSError
from sandbox.runtime import Runtime, open_runtime

__all__ = ["STORAGE", "KernelHandle", "KernelService", "prepare_data_dir"]

logger = logging.getLogger("agentos.kernel")

_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class KernelHandle:
    """What a started kernel service hands its starter."""

    socket: Path
    kernel: Kernel


def _make_dir(path: Path, mode: int) -> None:
    """Create ``path`` if missing; give it ``mode`` (our own directories only)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)


def prepare_data_dir(settings: KernelSettings) -> None:
    """Make the data directory's parts the kernel uses, with modes no umask changes.

    The data directory and the socket's directory get mode 0755 if they are made here
    (others' directories are left as they are); ``run/`` gets 0755 and ``kernel/`` 0700.
    """
    for directory in (settings.data_dir, settings.socket_path.parent):
        if not directory.exists():
            _make_dir(directory, 0o755)
    _make_dir(settings.layout.run_dir, 0o755)
    _make_dir(settings.layout.kernel_dir, 0o700)


def _unpublish(layout: DataLayout, pid: int) -> None:
    current = read_kernel_record(layout)
    if current is not None and current.pid == pid:
        layout.kernel_record.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def _published(layout: DataLayout, socket: Path, version: str) -> AsyncIterator[None]:
    """Keep ``run/kernel.json`` naming this process while the block runs."""
    record = KernelRecord(pid=os.getpid(), socket=socket, started_at=time.time(), version=version)
    await trio.to_thread.run_sync(write_kernel_record, layout, record)
    try:
        yield
    finally:
        with trio.move_on_after(_GRACE_SECONDS, shield=True):
            await trio.to_thread.run_sync(_unpublish, layout, record.pid)


@contextlib.contextmanager
def _owned_socket(path: Path) -> Iterator[None]:
    """Unlink the socket file at exit, unless something else has replaced it."""
    identity = path.stat()
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            now = path.lstat()
            if (now.st_dev, now.st_ino) == (identity.st_dev, identity.st_ino):
                path.unlink()


async def _open_runtime(settings: KernelSettings) -> tuple[Runtime | None, str]:
    """The sandbox runtime the settings ask for, or None and why there is none.

    A kernel without one still serves: processes without a command need no container.
    """
    state_dir = settings.layout.kernel_dir / "sandboxes"
    try:
        runtime = await trio.to_thread.run_sync(
            functools.partial(
                open_runtime, settings.runtime, state_dir, docker_url=settings.docker_url
            )
        )
    except AgentOSError as exc:
        logger.warning("processes cannot run commands: %s", exc)
        return None, str(exc)
    logger.info("sandbox runtime: %s", await runtime.describe())
    return runtime, ""


STORAGE = VPath("/storage")
"""Where the data directory's storage/ is mounted in the kernel's namespace."""


class KernelService:
    """Runs the kernel on its admin socket until cancelled.

    Args:
        settings: where to keep state and listen.
        kernel: the kernel to serve; a fresh one by default.
        socket_owner: uid/gid that should own the admin socket (the unprivileged web tier
            when ``agentos up`` runs as root); that uid is also allowed to connect.
    """

    def __init__(
        self,
        settings: KernelSettings,
        *,
        kernel: Kernel | None = None,
        socket_owner: tuple[int, int] | None = None,
    ) -> None:
        self._settings = settings
        self._kernel = kernel or Kernel(memory_budget=settings.memory_budget)
        self._owner = socket_owner

    async def run(
        self, *, task_status: trio.TaskStatus[KernelHandle] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; the socket file and record are gone when this returns.

        Raises:
            AlreadyExistsError: another kernel serves the socket path.
            InvalidArgumentError: the socket path is too long.
        """
        settings = self._settings
        layout = settings.layout
        prepare_data_dir(settings)
        path = settings.socket_path
        allowed = {os.geteuid(), *settings.admin_uids}
        if self._owner is not None:
            allowed.add(self._owner[0])
        listener = await bind_admin_socket(path, owner=self._owner)
        version = installed_version()
        kernel = self._kernel
        runtime: Runtime | None = None
        _make_dir(layout.storage_dir, 0o700)  # the kernel's alone; apps get theirs mounted
        storage = LocalFS(layout.storage_dir)
        kernel.mounts.mount(STORAGE, storage)
        app_roots = AppRoots.under(layout.storage_dir, layout.kernel_dir)
        policies = await trio.to_thread.run_sync(
            kernel.policies.attach, layout.kernel_dir / "policies.json"
        )
        logger.info("policies: the built-ins and %d of the administrators'", policies)
        try:
            with _owned_socket(path):
                runtime, unavailable = await _open_runtime(settings)
                if opened := await app_roots.open_existing():
                    logger.info("opened the volumes of %d app(s)", len(opened))
                async with (
                    kernel.supervisor.running(
                        kernel.calls,
                        runtime=runtime,
                        unavailable=unavailable,
                        sockets=layout.kernel_dir / "procs",
                        max_frame_bytes=settings.max_frame_bytes,
                        app_roots=app_roots,
                    ),
                    _published(layout, path, version),
                ):
                    logger.info(
                        "kernel %s serving on %s (admin uids %s)", version, path, sorted(allowed)
                    )
                    async with trio.open_nursery() as nursery:
                        await nursery.start(
                            functools.partial(
                                serve_admin_socket,
                                listener,
                                kernel.calls,
                                allowed_uids=allowed,
                                max_frame_bytes=settings.max_frame_bytes,
                                act_as=kernel.process_calls.act_as,
                            )
                        )
                        task_status.started(KernelHandle(socket=path, kernel=kernel))
        finally:
            kernel.sockets.close_all()  # the administrators' too: no process ends those
            with trio.move_on_after(_GRACE_SECONDS, shield=True):
                await app_roots.aclose()  # the processes using them have ended
            kernel.mounts.unmount(STORAGE)
            storage.close()
            with trio.move_on_after(_GRACE_SECONDS, shield=True):
                await listener.aclose()
                if runtime is not None:
                    await runtime.aclose()
            logger.info("kernel stopped")
