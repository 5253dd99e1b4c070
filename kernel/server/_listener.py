"""The admin socket file: safe creation, peer credentials, and the accept loop."""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import trio

from kernel.abi import ErrorCode, encode_frame, error_reply
from kernel.calls import Caller, CallTable
from kernel.proc import KERNEL_PID
from kernel.server._connection import Connection, linger_close
from sandbox.errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError

__all__ = [
    "MAX_SOCKET_PATH_BYTES",
    "PeerCredentials",
    "bind_admin_socket",
    "check_socket_path",
    "peer_credentials",
    "serve_admin_socket",
]

logger = logging.getLogger("agentos.kernel.server")

MAX_SOCKET_PATH_BYTES = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_UCRED = struct.Struct("3i")


@dataclass(frozen=True)
class PeerCredentials:
    """Who is on the other end of a Unix socket, as the OS vouches (SO_PEERCRED)."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: trio.socket.SocketType) -> PeerCredentials:
    """Read SO_PEERCRED of a connected Unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCredentials(pid=pid, uid=uid, gid=gid)


def check_socket_path(path: Path) -> None:
    """Raise InvalidArgumentError if ``path`` cannot be a Unix socket address."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        msg = (
            f"socket path {path} is {len(os.fsencode(path))} bytes; Unix sockets allow "
            f"{MAX_SOCKET_PATH_BYTES}: choose a shorter --data-dir or --socket"
        )
        raise InvalidArgumentError(msg)


async def _clear_stale(path: Path) -> None:
    """Remove a socket file nobody serves; refuse if a live server answers on it."""
    try:
        mode = (await trio.Path(path).lstat()).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        msg = f"{path} exists and is not a socket; refusing to replace it"
        raise FailedPreconditionError(msg)
    probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await probe.connect(os.fspath(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
        logger.info("removing stale socket %s", path)
        await trio.Path(path).unlink(missing_ok=True)
    else:
        msg = f"a kernel is already serving at {path}"
        raise AlreadyExistsError(msg)
    finally:
        probe.close()


async def bind_admin_socket(
    path: Path, *, owner: tuple[int, int] | None = None, backlog: int = 512
) -> trio.SocketListener:
    """Bind and listen on ``path`` with mode 0600, atomically.

    The socket is bound under a temporary name, given its mode (and ``owner`` uid/gid if
    set), then renamed into place, so no client can ever connect to it with looser
    permissions. A stale socket file is replaced; a live one is an error.

    Raises:
        InvalidArgumentError: the path is too long for a Unix socket.
        AlreadyExistsError: another server answers on ``path``.
        FailedPreconditionError: ``path`` exists and is not a socket.
    """
    check_socket_path(path)
    await _clear_stale(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    check_socket_path(temporary)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        temporary.unlink(missing_ok=True)
        await sock.bind(os.fspath(temporary))
        try:
            temporary.chmod(0o600)
            if owner is not None:
                os.chown(temporary, *owner)
            sock.listen(backlog)
            temporary.rename(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def serve_admin_socket(
    listener: trio.SocketListener,
    table: CallTable,
    *,
    allowed_uids: Collection[int],
    max_frame_bytes: int,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept admin connections forever; each runs as the kernel itself (all capabilities).

    Peers whose uid is not in ``allowed_uids`` get one EPERM reply and are disconnected.
    """
    allowed = frozenset(allowed_uids)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            peer = peer_credentials(stream.socket)
            if peer.uid not in allowed:
                logger.warning("refused admin connection from pid %d uid %d", peer.pid, peer.uid)
                message = f"uid {peer.uid} may not use the kernel's admin socket"
                with trio.move_on_after(1):
                    await stream.send_all(encode_frame(error_reply(None, ErrorCode.EPERM, message)))
                await linger_close(stream)
                return
            caller = Caller(pid=KERNEL_PID, uid=peer.uid, os_pid=peer.pid, capabilities=None)
            await Connection(stream, table, caller, max_frame_bytes=max_frame_bytes).run()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            logger.exception("admin connection failed")

    await trio.serve_listeners(handle, [listener], task_status=task_status)
