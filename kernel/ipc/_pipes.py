"""Pipes between kernel processes: a bounded byte stream, one writer, one reader.

A full pipe makes its writer wait (or fail with EAGAIN when it asked not to wait); an
empty one makes its reader wait until data comes or the writer closes its end (then it
reads EOF). Each pipe reserves its capacity against a global budget when made, so the
kernel's memory for pipes is bounded by that budget, not by what processes write.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import trio

from kernel.abi import (
    ErrorCode,
    SyscallExhaustedError,
    SyscallNotFoundError,
    SyscallPermissionError,
    SyscallPreconditionError,
    SyscallTimeoutError,
    SyscallUnavailableError,
)
from kernel.ipc._waiting import Waitable

__all__ = [
    "PIPES_PER_PROCESS",
    "PIPE_BUDGET",
    "Pipe",
    "PipeTable",
]

PIPE_BUDGET = 50 << 20
"""Bytes all pipes together may hold."""
PIPES_PER_PROCESS = 64


@dataclass(eq=False)
class Pipe(Waitable):
    """One pipe: who made it, who writes, who reads, and what is in it."""

    id: int
    creator: int
    writer: int
    reader: int
    capacity: int
    buffer: bytearray = field(default_factory=bytearray)
    write_closed: bool = False
    read_closed: bool = False
    destroyed: bool = False
    bytes_written: int = 0
    bytes_read: int = 0

    def check_usable(self) -> None:
        if self.destroyed:
            msg = f"pipe {self.id} was destroyed"
            raise SyscallPreconditionError(msg, code=ErrorCode.EPIPE)


class PipeTable:
    """Every pipe, the budget they share, and what each process made."""

    def __init__(self, *, budget: int = PIPE_BUDGET, per_process: int = PIPES_PER_PROCESS) -> None:
        self.budget = budget
        self.per_process = per_process
        self.reserved = 0
        self._pipes: dict[int, Pipe] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._pipes)

    def pipes(self) -> list[Pipe]:
        """Every pipe, oldest first."""
        return list(self._pipes.values())

    def create(self, *, creator: int, writer: int, reader: int, capacity: int) -> Pipe:
        """A new pipe, its capacity reserved.

        Raises:
            SyscallExhaustedError: EMFILE past the creator's pipes, ENOMEM past the budget.
        """
        if sum(1 for p in self._pipes.values() if p.creator == creator) >= self.per_process:
            msg = f"a process may make at most {self.per_process} pipes"
            raise SyscallExhaustedError(msg, code=ErrorCode.EMFILE)
        if self.reserved + capacity > self.budget:
            msg = f"the pipes' budget is spent: {self.reserved} of {self.budget} bytes reserved"
            raise SyscallExhaustedError(msg, code=ErrorCode.ENOMEM)
        pipe = Pipe(next(self._ids), creator, writer, reader, capacity)
        self._pipes[pipe.id] = pipe
        self.reserved += capacity
        return pipe

    def get(self, pipe_id: int) -> Pipe:
        """The pipe ``pipe_id``.

        Raises:
            SyscallNotFoundError: ENOENT, no such pipe.
        """
        try:
            return self._pipes[pipe_id]
        except KeyError:
            msg = f"no such pipe {pipe_id}"
            raise SyscallNotFoundError(msg) from None

    async def write(self, pipe: Pipe, data: bytes, *, wait: bool, within: float | None) -> int:
        """Put ``data`` in; wait for room as it drains unless ``wait`` is False.

        Returns:
            Bytes written: all of it, or what fitted (without waiting) or fitted in time.

        Raises:
            SyscallPreconditionError: EPIPE, the pipe's reader or writer end is closed.
            SyscallUnavailableError: EAGAIN, it is full and ``wait`` is False.
            SyscallTimeoutError: ETIMEDOUT, nothing fitted within ``within`` seconds.
        """
        written = 0
        with trio.move_on_after(math.inf if within is None else within):
            while True:
                pipe.check_usable()
                if pipe.write_closed or pipe.read_closed:
                    end = "writer" if pipe.write_closed else "reader"
                    msg = f"pipe {pipe.id} is closed at the {end}'s end"
                    raise SyscallPreconditionError(msg, code=ErrorCode.EPIPE)
                room = pipe.capacity - len(pipe.buffer)
                if room > 0:
                    piece = data[written : written + room]
                    pipe.buffer += piece
                    written += len(piece)
                    pipe.bytes_written += len(piece)
                    pipe.wake()
                if written == len(data):
                    return written
                if not wait:
                    if written:
                        return written
                    msg = f"pipe {pipe.id} is full"
                    raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN)
                await pipe.changed()
        if written:
            return written
        msg = f"pipe {pipe.id} stayed full for {within} s"
        raise SyscallTimeoutError(msg)

    async def read(self, pipe: Pipe, size: int, *, wait: bool, within: float | None) -> bytes:
        """Take up to ``size`` bytes; wait for some unless ``wait`` is False.

        Returns:
            What there was (b"" at EOF: the writer closed and nothing is left).

        Raises:
            SyscallUnavailableError: EAGAIN, it is empty and ``wait`` is False.
            SyscallTimeoutError: ETIMEDOUT, nothing came within ``within`` seconds.
        """
        with trio.move_on_after(math.inf if within is None else within):
            while True:
                pipe.check_usable()
                if pipe.buffer:
                    data = bytes(pipe.buffer[:size])
                    del pipe.buffer[:size]
                    pipe.bytes_read += len(data)
                    pipe.wake()
                    return data
                if pipe.write_closed:
                    return b""
                if not wait:
                    msg = f"pipe {pipe.id} is empty"
                    raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN)
                await pipe.changed()
        msg = f"nothing came through pipe {pipe.id} in {within} s"
        raise SyscallTimeoutError(msg)

    def close(self, pipe: Pipe, pid: int, *, writer: bool = True, reader: bool = True) -> None:
        """Close ``pid``'s ends among those asked for (both by default).

        Raises:
            SyscallPermissionError: EPERM, it holds none of them.
        """
        closes_writer = writer and pid == pipe.writer
        closes_reader = reader and pid == pipe.reader
        if not (closes_writer or closes_reader):
            msg = f"process {pid} holds no such end of pipe {pipe.id}"
            raise SyscallPermissionError(msg)
        if closes_writer:
            pipe.write_closed = True
        if closes_reader:
            pipe.read_closed = True
            pipe.buffer.clear()  # nobody will read it
        pipe.wake()
        if pipe.write_closed and pipe.read_closed:
            self.destroy(pipe)

    def destroy(self, pipe: Pipe) -> None:
        """Remove the pipe and release its reservation; its waiters fail with EPIPE."""
        if pipe.destroyed:
            return
        pipe.destroyed = True
        pipe.buffer.clear()
        del self._pipes[pipe.id]
        self.reserved -= pipe.capacity
        pipe.wake()

    def holders(self) -> set[int]:
        """Every pid a pipe names."""
        return {pid for p in self._pipes.values() for pid in (p.creator, p.writer, p.reader)}

    def release(self, pid: int) -> None:
        """A process exited: the pipes it made go, and its ends of others close."""
        for pipe in list(self._pipes.values()):
            if pipe.creator == pid:
                self.destroy(pipe)
            elif pid in (pipe.writer, pipe.reader):
                self.close(pipe, pid)
