"""The admin socket file: safe creation, peer credentials, and the accept loop."""

from __future__ import annotations

import errno
import logging
import os
import secrets
import socket
import stat
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import trio

from kernel.abi import ErrorCode, encode_frame, error_reply
from kernel.calls import ActAs, Caller, CallTable
from kernel.client import MAX_SOCKET_PATH_BYTES
from kernel.proc import KERNEL_PID
from kernel.server._connection import Connection, linger_close
from sandbox.errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError

__all__ = [
    "PeerCredentials",
    "bind_admin_socket",
    "check_socket_path",
    "peer_credentials",
    "serve_admin_socket",
    "serve_connections",
]

logger = logging.getLogger("agentos.kernel.server")

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


def _check_socket_dir(directory: Path) -> None:
    """Refuse a directory where someone else could swap files under our feet.

    The socket's mode and owner are set by path, so nobody but us (or root) may be able to
    create or rename entries there: owned by us or root, and not writable by group or
    others unless sticky (as /tmp is).
    """
    st = directory.stat()
    if st.st_uid not in (0, os.geteuid()):
        msg = (
            f"{directory} belongs to uid {st.st_uid}; the admin socket needs a directory of its own"
        )
        raise FailedPreconditionError(msg)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        msg = f"{directory} is writable by others; the admin socket needs a directory of its own"
        raise FailedPreconditionError(msg)


async def bind_admin_socket(
    path: Path, *, owner: tuple[int, int] | None = None, backlog: int = 512
) -> trio.SocketListener:
    """Bind and listen on ``path`` with mode 0600, atomically.

    The socket is bound under a temporary name and given its mode (and ``owner``, if set)
    before it is linked to ``path``, so no client can reach it with looser permissions.
    link(2) fails if ``path`` exists, so of two kernels starting together exactly one
    claims it. A stale socket file is replaced; a live one is an error.

    Raises:
        InvalidArgumentError: the path is too long for a Unix socket.
        AlreadyExistsError: another server answers on ``path``, or claimed it first.
        FailedPreconditionError: ``path`` exists and is not a socket, or its directory is
            not ours alone.
    """
    check_socket_path(path)
    _check_socket_dir(path.parent)
    await _clear_stale(path)
    # Short, since the final path may be near the limit; unique, since kernels may race.
    temporary = path.with_name(f".{secrets.token_hex(4)}~")
    check_socket_path(temporary)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        temporary.unlink(missing_ok=True)
        await sock.bind(os.fspath(temporary))
        try:
            temporary.chmod(0o600)
            if owner is not None:
                os.chown(temporary, *owner, follow_symlinks=False)
            sock.listen(backlog)
            try:
                os.link(temporary, path)
            except FileExistsError:
                msg = f"another kernel claimed {path} while this one was starting"
                raise AlreadyExistsError(msg) from None
        finally:
            temporary.unlink(missing_ok=True)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def serve_connections(
    listener: trio.SocketListener,
    table: CallTable,
    *,
    caller_of: Callable[[PeerCredentials], Caller | None],
    max_frame_bytes: int,
    act_as: ActAs | None = None,
    max_connections: int | None = None,
    what: str,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections forever; each peer acts as the caller ``caller_of`` names.

    A peer for whom it names none gets one EPERM reply (id nil) and is disconnected; so
    does, with EAGAIN, one that would be past ``max_connections`` open at once.
    """
    open_now = 0
    full_since_warned = False

    async def refuse(stream: trio.SocketStream, code: ErrorCode, message: str) -> None:
        with trio.move_on_after(1):
            await stream.send_all(encode_frame(error_reply(None, code, message)))
        await linger_close(stream)

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal open_now, full_since_warned
        try:
            peer = peer_credentials(stream.socket)
            caller = caller_of(peer)
            if caller is None:
                logger.warning("refused %s connection from pid %d uid %d", what, peer.pid, peer.uid)
                await refuse(stream, ErrorCode.EPERM, f"uid {peer.uid} may not use the {what}")
                return
            if max_connections is not None and open_now >= max_connections:
                log = logger.debug if full_since_warned else logger.warning
                full_since_warned = True  # once per filling up, not once per attempt
                log("refused pid %d: %d connections to the %s", peer.pid, open_now, what)
                message = f"the {what} serves at most {max_connections} connections at once"
                await refuse(stream, ErrorCode.EAGAIN, message)
                return
            open_now += 1
            try:
                await Connection(
                    stream, table, caller, max_frame_bytes=max_frame_bytes, act_as=act_as
                ).run()
            finally:
                open_now -= 1
                full_since_warned = False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            logger.exception("%s connection failed", what)

    await trio.serve_listeners(handle, [listener], task_status=task_status)


async def serve_admin_socket(
    listener: trio.SocketListener,
    table: CallTable,
    *,
    allowed_uids: Collection[int],
    max_frame_bytes: int,
    act_as: ActAs | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept admin connections forever; each runs as the kernel itself (all capabilities).

    Peers whose uid is not in ``allowed_uids`` get one EPERM reply and are disconnected.
    A request may act as a process by naming it in ``as_pid``; ``act_as`` resolves it
    (without one, only pid 0, the kernel itself, can be named).
    """
    allowed = frozenset(allowed_uids)

    def caller_of(peer: PeerCredentials) -> Caller | None:
        if peer.uid not in allowed:
            return None
        return Caller(pid=KERNEL_PID, uid=peer.uid, os_pid=peer.pid, capabilities=None)

    await serve_connections(
        listener, table, caller_of=caller_of, max_frame_bytes=max_frame_bytes, act_as=act_as,
        what="kernel's admin socket", task_status=task_status,
    )  # fmt: skip
