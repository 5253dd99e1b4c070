"""The recent output of a process's command, kept for ``proc.output``.

A ring of chunks, numbered in arrival order, holding at most ``capacity`` bytes: older
chunks are evicted (and counted) as new ones come. Readers ask for the chunks after a
number they have seen, and may wait for more until the output ends (both streams
closed: every process of the container has gone).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import trio

from kernel.abi.process import OutputStream

__all__ = ["OUTPUT_CAPACITY", "OutputChunk", "OutputLog"]

OUTPUT_CAPACITY = 64 * 1024
"""Bytes of recent output kept per process (like the tail of ``docker logs``)."""


@dataclass(frozen=True)
class OutputChunk:
    """Bytes of one stream, numbered from 1 in arrival order across both streams."""

    seq: int
    stream: OutputStream
    data: bytes


class OutputLog:
    """A bounded log of a command's stdout and stderr, with readers that can follow it."""

    def __init__(self, capacity: int = OUTPUT_CAPACITY) -> None:
        self.capacity = capacity
        self._chunks: deque[OutputChunk] = deque()
        self._size = 0
        self._last_seq = 0
        self.evicted_bytes = 0
        """Bytes no longer kept (the oldest, pushed out by newer output)."""
        self._open = {OutputStream.STDOUT, OutputStream.STDERR}
        self._changed = trio.Event()

    @property
    def last_seq(self) -> int:
        """The number of the latest chunk (0 before any)."""
        return self._last_seq

    @property
    def ended(self) -> bool:
        """Whether both streams have closed: no more output will come."""
        return not self._open

    def append(self, stream: OutputStream, data: bytes) -> None:
        """Record ``data``; evict the oldest chunks past the capacity."""
        if not data:
            return
        if len(data) > self.capacity:  # its head would be evicted at once
            self.evicted_bytes += len(data) - self.capacity
            data = data[-self.capacity :]
        self._last_seq += 1
        self._chunks.append(OutputChunk(self._last_seq, stream, data))
        self._size += len(data)
        while self._size > self.capacity:
            oldest = self._chunks.popleft()
            self._size -= len(oldest.data)
            self.evicted_bytes += len(oldest.data)
        self._wake()

    def close(self, stream: OutputStream) -> None:
        """One stream has reached its end."""
        self._open.discard(stream)
        self._wake()

    def after(self, seq: int) -> list[OutputChunk]:
        """The chunks still kept whose number is above ``seq``."""
        return [chunk for chunk in self._chunks if chunk.seq > seq]

    async def wait_after(self, seq: int) -> None:
        """Return once there is a chunk above ``seq``, or the output has ended."""
        while self._last_seq <= seq and not self.ended:
            await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
