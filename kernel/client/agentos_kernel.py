"""AgentOS syscalls from inside a sandbox: ``import agentos_kernel``.

The kernel puts this module (and msgpack) at ``/run/agentos/python``, on ``PYTHONPATH``,
in every container it runs, and its socket at ``/run/agentos/kernel.sock``. Every call
on that socket acts as the process itself (``AGENTOS_PID``) with its capabilities:

    import agentos_kernel

    with agentos_kernel.connect() as kernel:
        me = kernel.call("proc.info", pid=kernel.pid)
        used = kernel.call("proc.stats", pid=kernel.pid)["memory_current_bytes"]
        kernel.call("sys.env_set", name="MODE", value="fast")

What it may call is what its policy grants (the built-in ones: files, system
information, time, messages). A call that fails raises :class:`KernelError` with the
POSIX code (``EPERM``...); ``.stream()`` makes streaming calls (a stream left early is
cancelled in the kernel, ``sys.cancel``); ``.attach_shm(id)`` maps a shared memory
segment's pages, zero copy. This module needs only
the standard library (Python 3.8+) and msgpack; one call is in flight at a time on a
connection (open more for more).
"""

from __future__ import annotations

import array
import mmap
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import msgpack

__all__ = ["SOCKET_PATH", "Kernel", "KernelError", "connect"]

SOCKET_PATH = "/run/agentos/kernel.sock"
_HEADER = struct.Struct(">I")
_MAX_FRAME = 16 * 1024 * 1024
_FD_BYTES = array.array("i").itemsize


class KernelError(Exception):
    """A call the kernel refused or that failed: ``code`` is its POSIX name."""

    def __init__(self, code: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or []


class Kernel:
    """One connection to the kernel socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._next_id = 1
        self._fds: list[int] = []  # descriptors received, in order, not yet claimed
        pid = os.environ.get("AGENTOS_PID", "")
        self.pid = int(pid) if pid.isdigit() else None
        """This process's kernel pid, if the kernel started it."""

    def __enter__(self) -> Kernel:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (and any descriptor received and not claimed)."""
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self._sock.close()

    def call(self, name: str, args: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Make the call ``name`` with ``args`` (or keyword arguments); return its result.

        Raises:
            KernelError: the kernel's error.
        """
        request_id = self._send(name, {**(args or {}), **kwargs})
        reply = self._receive(request_id)
        if "item" in reply:
            msg = f"{name} is a streaming call: use stream()"
            raise KernelError("EINVAL", msg)
        return _result(reply)

    def stream(
        self, name: str, args: Mapping[str, Any] | None = None, /, **kwargs: Any
    ) -> Iterator[Any]:
        """Make a streaming call; yield its items; its final result ends the iteration.

        Raises:
            KernelError: the kernel's error, when it comes.
        """
        request_id = self._send(name, {**(args or {}), **kwargs})
        finished = False
        try:
            while True:
                reply = self._receive(request_id)
                if "item" in reply:
                    yield reply["item"]
                    continue
                finished = True
                _result(reply)
                return
        finally:
            if not finished:  # left early: stop it, and read past it
                self._abandon(request_id)

    def _abandon(self, request_id: int) -> None:
        """Cancel a request (``sys.cancel``) and read up to its final reply."""
        pending = {request_id, self._send("sys.cancel", {"id": request_id})}
        while pending:
            reply = self._next_reply()
            if "item" not in reply:
                pending.discard(reply.get("id"))

    def _send(self, name: str, args: Mapping[str, Any]) -> int:
        request_id = self._next_id
        self._next_id += 1
        body = msgpack.packb({"id": request_id, "call": name, "args": dict(args)})
        self._sock.sendall(_HEADER.pack(len(body)) + body)
        return request_id

    def _receive(self, request_id: int) -> dict[str, Any]:
        while True:
            reply = self._next_reply()
            if reply.get("id") == request_id:
                return reply

    def _next_reply(self) -> dict[str, Any]:
        (length,) = _HEADER.unpack(self._read(_HEADER.size))
        if length > _MAX_FRAME:
            msg = f"the kernel sent a frame of {length} bytes"
            raise KernelError("EMSGSIZE", msg)
        reply = msgpack.unpackb(self._read(length))
        if reply.get("id") is None and "error" in reply:
            _result(reply)  # a connection-level error: raises
        return dict(reply)

    def attach_shm(self, shm_id: int, *, read_only: bool = False) -> mmap.mmap:
        """Attach to a shared memory segment and map its pages (``shm.attach``).

        Raises:
            KernelError: the kernel refused, or sent no descriptor.
        """
        result = self.call("shm.attach", shm_id=shm_id, read_only=read_only)
        if not result.get("fd_passed") or not self._fds:
            msg = "the kernel sent no descriptor for the segment"
            raise KernelError("EIO", msg)
        fd = self._fds.pop(0)
        try:
            access = mmap.ACCESS_READ if read_only else mmap.ACCESS_WRITE
            return mmap.mmap(fd, int(result["size"]), access=access)
        finally:
            os.close(fd)

    def _read(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk, ancillary, _flags, _address = self._sock.recvmsg(
                min(size, 1 << 20), socket.CMSG_SPACE(_FD_BYTES * 4)
            )
            for level, kind, data in ancillary:  # descriptors the kernel passed (shm)
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(data) - len(data) % _FD_BYTES
                    self._fds.extend(array.array("i", data[:usable]))
            if not chunk:
                msg = "the kernel closed the connection"
                raise KernelError("ECONNRESET", msg)
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


def _result(reply: Mapping[str, Any]) -> Any:
    if reply.get("ok"):
        return reply.get("result")
    error = reply.get("error") or {}
    raise KernelError(
        str(error.get("code", "EIO")), str(error.get("message", "")), error.get("details")
    )


def connect(path: str | None = None, *, timeout: float | None = 30.0) -> Kernel:
    """Connect to the kernel socket (by default, this process's own).

    ``timeout`` bounds the connect alone: a call may take as long as it takes
    (``proc.wait``, ``time.sleep``, a quiet stream).

    Raises:
        OSError: nothing serves there, or this user may not connect.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path or os.environ.get("AGENTOS_KERNEL_SOCKET") or SOCKET_PATH)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return Kernel(sock)
