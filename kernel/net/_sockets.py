"""The sockets the kernel holds for processes: a table per owner, bounded, closed at exit."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

import trio

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallExhaustedError,
    SyscallNotFoundError,
    syscall_error,
)

__all__ = ["MAX_SOCKETS", "MAX_SOCKETS_PER_PROCESS", "KernelSocket", "SocketTable", "net_error"]

MAX_SOCKETS_PER_PROCESS = 256
MAX_SOCKETS = 4096

# OS errors with no code of their own on the kernel socket, as the nearest one there.
_NEAREST: Mapping[int, ErrorCode] = {
    errno.EDESTADDRREQ: ErrorCode.ENOTCONN,  # a datagram socket with no peer: send_to
    errno.EISCONN: ErrorCode.EBUSY,
    errno.EALREADY: ErrorCode.EBUSY,
    errno.EINPROGRESS: ErrorCode.EBUSY,
    errno.EADDRNOTAVAIL: ErrorCode.EINVAL,  # not an address of the host's
    errno.EAFNOSUPPORT: ErrorCode.EINVAL,
    errno.EOPNOTSUPP: ErrorCode.EINVAL,
    errno.ENOPROTOOPT: ErrorCode.EINVAL,
    errno.ENOBUFS: ErrorCode.ENOMEM,
    errno.ENETDOWN: ErrorCode.ENETUNREACH,
    errno.EHOSTDOWN: ErrorCode.EHOSTUNREACH,
    errno.ECONNABORTED: ErrorCode.ECONNRESET,
}


def net_error(exc: OSError, what: str) -> SyscallError:
    """The syscall error for the network's refusal of ``what`` (the OS's name in the message)."""
    if isinstance(exc, socket.gaierror):  # a name bind or connect could not resolve
        return SyscallNotFoundError(f"{what}: {exc.strerror}", code=ErrorCode.ENOENT)
    number = exc.errno or errno.EIO
    name = errno.errorcode.get(number, "EIO")
    code = _NEAREST.get(number)
    if code is None:
        try:
            code = ErrorCode(name)
        except ValueError:
            code = ErrorCode.EIO
    detail = os.strerror(number) if code.value == name else f"{os.strerror(number)} ({name})"
    return syscall_error(code.value, f"{what}: {detail}")


@dataclass(eq=False)
class KernelSocket:
    """One socket and what the kernel knows of it.

    A stream socket's sends and receives may wait at the same time, but not two of one
    kind: each kind takes its lock (trio allows one waiter per direction).
    """

    id: int
    owner: int
    sock: trio.socket.SocketType
    family: int
    kind: int
    bound: bool = False
    listening: bool = False
    sending: trio.Lock = field(default_factory=trio.Lock)  # connect, send, send_to
    receiving: trio.Lock = field(default_factory=trio.Lock)  # accept, recv, recv_from

    @property
    def is_stream(self) -> bool:
        """Whether it is a TCP (stream) socket."""
        return self.kind == socket.SOCK_STREAM


class SocketTable:
    """Sockets by id, each owned by one process (the kernel's administrators: pid 0).

    Args:
        per_process: sockets one process may hold.
        total: sockets the kernel holds at most.
    """

    def __init__(
        self, *, per_process: int = MAX_SOCKETS_PER_PROCESS, total: int = MAX_SOCKETS
    ) -> None:
        self.per_process = per_process
        self.total = total
        self._sockets: dict[int, KernelSocket] = {}
        self._by_owner: dict[int, set[int]] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._sockets)

    def owned_by(self, pid: int) -> list[KernelSocket]:
        """The sockets ``pid`` holds, oldest first."""
        return [self._sockets[i] for i in sorted(self._by_owner.get(pid, ()))]

    def _room(self, owner: int) -> None:
        if len(self._by_owner.get(owner, ())) >= self.per_process:
            msg = f"process {owner} holds {self.per_process} sockets already"
            raise SyscallExhaustedError(msg, code=ErrorCode.EMFILE)
        if len(self._sockets) >= self.total:
            msg = f"the kernel holds {self.total} sockets already"
            raise SyscallExhaustedError(msg, code=ErrorCode.ENFILE)

    def open(self, owner: int, family: int, kind: int) -> KernelSocket:
        """A new socket for ``owner``.

        Raises:
            SyscallExhaustedError: EMFILE (the process's limit) or ENFILE (the kernel's).
        """
        self._room(owner)
        try:
            sock = trio.socket.socket(family, kind)
        except OSError as exc:
            raise net_error(exc, "socket") from exc
        return self._add(owner, sock, family, kind)

    def adopt(self, owner: int, sock: trio.socket.SocketType) -> KernelSocket:
        """Hold an accepted connection for ``owner``; closed at once if there is no room.

        Raises:
            SyscallExhaustedError: EMFILE or ENFILE, as :meth:`open`.
        """
        try:
            self._room(owner)
        except SyscallError:
            sock.close()
            raise
        held = self._add(owner, sock, sock.family, sock.type)
        held.bound = True
        return held

    def _add(
        self, owner: int, sock: trio.socket.SocketType, family: int, kind: int
    ) -> KernelSocket:
        held = KernelSocket(next(self._ids), owner, sock, family, kind)
        self._sockets[held.id] = held
        self._by_owner.setdefault(owner, set()).add(held.id)
        return held

    def get(self, sock_id: int) -> KernelSocket | None:
        """The socket ``sock_id``, if it is open."""
        return self._sockets.get(sock_id)

    def close(self, sock_id: int) -> None:
        """Close a socket; a call waiting on it ends (``ClosedResourceError`` there)."""
        held = self._sockets.pop(sock_id, None)
        if held is None:
            return
        owned = self._by_owner[held.owner]
        owned.discard(sock_id)
        if not owned:
            del self._by_owner[held.owner]
        with contextlib.suppress(OSError):
            held.sock.close()

    def release(self, pid: int) -> None:
        """Close every socket ``pid`` holds (it has exited)."""
        for sock_id in list(self._by_owner.get(pid, ())):
            self.close(sock_id)

    def close_all(self) -> None:
        """Close every socket (the kernel is stopping)."""
        for sock_id in list(self._sockets):
            self.close(sock_id)

    def holders(self) -> set[int]:
        """The processes holding sockets."""
        return set(self._by_owner)
