"""The sockets the kernel holds for processes: a table per owner, bounded, closed at exit."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
from dataclasses import dataclass, field

import trio

from kernel.abi import ErrorCode, SyscallError, SyscallExhaustedError, syscall_error

__all__ = ["MAX_SOCKETS", "MAX_SOCKETS_PER_PROCESS", "KernelSocket", "SocketTable", "net_error"]

MAX_SOCKETS_PER_PROCESS = 256
MAX_SOCKETS = 4096


def net_error(exc: OSError, what: str) -> SyscallError:
    """The syscall error for the network's refusal of ``what``."""
    number = exc.errno or errno.EIO
    name = errno.errorcode.get(number, "EIO")
    try:
        code = ErrorCode(name)
    except ValueError:
        code = ErrorCode.EIO
    return syscall_error(code.value, f"{what}: {os.strerror(number)}")


@dataclass
class KernelSocket:
    """One socket and what the kernel knows of it."""

    id: int
    owner: int
    sock: trio.socket.SocketType
    family: int
    kind: int
    listening: bool = False
    lock: trio.Lock = field(default_factory=trio.Lock)  # one receive at a time

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
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._sockets)

    def owned_by(self, pid: int) -> list[KernelSocket]:
        """The sockets ``pid`` holds."""
        return [s for s in self._sockets.values() if s.owner == pid]

    def _room(self, owner: int) -> None:
        if len(self._sockets) >= self.total:
            msg = f"the kernel holds {self.total} sockets already"
            raise SyscallExhaustedError(msg, code=ErrorCode.ENFILE)
        if len(self.owned_by(owner)) >= self.per_process:
            msg = f"process {owner} holds {self.per_process} sockets already"
            raise SyscallExhaustedError(msg, code=ErrorCode.EMFILE)

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
        """Hold an accepted connection for ``owner``; closed at once if there is no room."""
        try:
            self._room(owner)
        except SyscallError:
            sock.close()
            raise
        return self._add(owner, sock, sock.family, sock.type)

    def _add(
        self, owner: int, sock: trio.socket.SocketType, family: int, kind: int
    ) -> KernelSocket:
        held = KernelSocket(next(self._ids), owner, sock, family, kind)
        self._sockets[held.id] = held
        return held

    def get(self, sock_id: int) -> KernelSocket | None:
        """The socket ``sock_id``, if it is open."""
        return self._sockets.get(sock_id)

    def close(self, sock_id: int) -> None:
        """Close a socket (a call blocked on it ends with an error)."""
        held = self._sockets.pop(sock_id, None)
        if held is not None:
            with contextlib.suppress(OSError):
                held.sock.close()

    def release(self, pid: int) -> None:
        """Close every socket ``pid`` holds (it has exited)."""
        for held in self.owned_by(pid):
            self.close(held.id)

    def close_all(self) -> None:
        """Close every socket (the kernel is stopping)."""
        for sock_id in list(self._sockets):
            self.close(sock_id)

    def holders(self) -> set[int]:
        """The processes holding sockets."""
        return {s.owner for s in self._sockets.values()}
