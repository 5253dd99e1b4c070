"""Per-process sockets: the one a sandboxed process finds at /run/agentos/kernel.sock.

Every call on it acts as that process: the caller is fixed when the connection is
accepted, and ``as_pid`` may name no one else. Only the sandbox's own uid may connect.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import trio

from kernel.calls import Caller, CallTable
from kernel.server._listener import PeerCredentials, check_socket_path, serve_connections

__all__ = ["bind_process_socket", "serve_process_socket"]

logger = logging.getLogger("agentos.kernel.server")


async def bind_process_socket(path: Path, *, backlog: int = 64) -> trio.SocketListener:
    """Listen on ``path`` (mode 0600, owned by the kernel until given to the sandbox).

    Raises:
        InvalidArgumentError: the path is too long for a Unix socket.
    """
    check_socket_path(path)
    await trio.Path(path).unlink(missing_ok=True)  # a previous run's, in our own directory
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(os.fspath(path))
        await trio.Path(path).chmod(0o600)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def serve_process_socket(
    listener: trio.SocketListener,
    table: CallTable,
    *,
    caller_of: Callable[[PeerCredentials], Caller | None],
    max_frame_bytes: int,
    max_connections: int = 64,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept a process's connections until cancelled, at most ``max_connections`` at once.

    Args:
        listener: from :func:`bind_process_socket`.
        table: the kernel's calls.
        caller_of: the caller a peer acts as, or None to refuse it (EPERM, disconnect).
        max_frame_bytes: the frame size limit.
        max_connections: past this many open at once, a connection gets EAGAIN and is
            closed: a process cannot spend the kernel's descriptors without bound.
        task_status: started once accepting.
    """
    await serve_connections(
        listener, table, caller_of=caller_of, max_frame_bytes=max_frame_bytes,
        max_connections=max_connections, what="kernel socket of this process",
        task_status=task_status,
    )  # fmt: skip
