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

from kernel.abi import ErrorCode, encode_frame, error_reply
from kernel.calls import Caller, CallTable
from kernel.server._connection import Connection, linger_close
from kernel.server._listener import PeerCredentials, check_socket_path, peer_credentials

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
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept a process's connections until cancelled.

    Args:
        listener: from :func:`bind_process_socket`.
        table: the kernel's calls.
        caller_of: the caller a peer acts as, or None to refuse it (EPERM, disconnect).
        max_frame_bytes: the frame size limit.
        task_status: started once accepting.
    """

    async def handle(stream: trio.SocketStream) -> None:
        try:
            peer = peer_credentials(stream.socket)
            caller = caller_of(peer)
            if caller is None:
                logger.warning(
                    "refused a process-socket connection from pid %d uid %d", peer.pid, peer.uid
                )
                message = f"uid {peer.uid} may not use this process's kernel socket"
                with trio.move_on_after(1):
                    await stream.send_all(encode_frame(error_reply(None, ErrorCode.EPERM, message)))
                await linger_close(stream)
                return
            await Connection(stream, table, caller, max_frame_bytes=max_frame_bytes).run()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            logger.exception("process-socket connection failed")

    await trio.serve_listeners(handle, [listener], task_status=task_status)
