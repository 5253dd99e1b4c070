"""Shared memory segments: memfd pages a sandboxed process can map, zero copy.

A segment is a sealed memfd of a fixed size (it can neither shrink nor grow). Processes
attach to it, read-only or read-write as they are allowed, and may be handed a
descriptor of it over their kernel socket to map the very same pages; ``shm.read`` and
``shm.write`` reach it through the kernel for those that do not map. All segments
together reserve at most ``budget`` bytes.
"""

from __future__ import annotations

import fcntl
import itertools
import os
from dataclasses import dataclass, field

from kernel.abi import (
    ErrorCode,
    SyscallExhaustedError,
    SyscallInvalidArgumentError,
    SyscallNotFoundError,
)

__all__ = ["SEGMENTS_PER_PROCESS", "SHM_BUDGET", "Segment", "ShmTable"]

SHM_BUDGET = 500 << 20
SEGMENTS_PER_PROCESS = 64
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


@dataclass(eq=False)
class Segment:
    """One segment: its memfd, who made it, who is attached and how."""

    id: int
    creator: int
    app_id: str | None
    size: int
    app_access: str  # what its creator's app may do: none, read, write
    fd: int
    attached: dict[int, bool] = field(default_factory=dict)  # pid -> read-only
    destroyed: bool = False


class ShmTable:
    """Every segment, and the memory they reserve together."""

    def __init__(
        self, *, budget: int = SHM_BUDGET, per_process: int = SEGMENTS_PER_PROCESS
    ) -> None:
        self.budget = budget
        self.per_process = per_process
        self.reserved = 0
        self._segments: dict[int, Segment] = {}
        self._ids = itertools.count(1)

    def segments(self) -> list[Segment]:
        """Every segment, oldest first."""
        return list(self._segments.values())

    def create(self, *, creator: int, app_id: str | None, size: int, app_access: str) -> Segment:
        """A new zero-filled segment of ``size`` bytes.

        Raises:
            SyscallExhaustedError: EMFILE past the creator's segments, ENOMEM past the
                budget.
        """
        if sum(1 for s in self._segments.values() if s.creator == creator) >= self.per_process:
            msg = f"a process may make at most {self.per_process} segments"
            raise SyscallExhaustedError(msg, code=ErrorCode.EMFILE)
        if self.reserved + size > self.budget:
            msg = f"the segments' budget is spent: {self.reserved} of {self.budget} bytes"
            raise SyscallExhaustedError(msg, code=ErrorCode.ENOMEM)
        ident = next(self._ids)
        fd = os.memfd_create(f"agentos-shm-{ident}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        except BaseException:
            os.close(fd)
            raise
        segment = Segment(ident, creator, app_id, size, app_access, fd)
        self._segments[ident] = segment
        self.reserved += size
        return segment

    def get(self, shm_id: int) -> Segment:
        """The segment ``shm_id``.

        Raises:
            SyscallNotFoundError: ENOENT, no such segment.
        """
        try:
            return self._segments[shm_id]
        except KeyError:
            msg = f"no such shared memory segment {shm_id}"
            raise SyscallNotFoundError(msg) from None

    @staticmethod
    def _span(segment: Segment, offset: int, size: int) -> None:
        if offset + size > segment.size:
            msg = f"bytes {offset}..{offset + size} are past segment {segment.id}'s {segment.size}"
            raise SyscallInvalidArgumentError(msg)

    def read(self, segment: Segment, offset: int, size: int) -> bytes:
        """Bytes of the segment (EINVAL past its end)."""
        self._span(segment, offset, size)
        return os.pread(segment.fd, size, offset)

    def write(self, segment: Segment, offset: int, data: bytes) -> None:
        """Write into the segment (EINVAL past its end)."""
        self._span(segment, offset, len(data))
        view = memoryview(data)
        while view:
            written = os.pwrite(segment.fd, view, offset)
            view, offset = view[written:], offset + written

    @staticmethod
    def descriptor(segment: Segment, *, read_only: bool) -> int:
        """A new descriptor of the segment's memfd; a read-only one cannot map writable."""
        flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC
        return os.open(f"/proc/self/fd/{segment.fd}", flags)

    def destroy(self, segment: Segment) -> None:
        """Remove the segment; mappings already made keep their pages until unmapped."""
        if segment.destroyed:
            return
        segment.destroyed = True
        del self._segments[segment.id]
        os.close(segment.fd)
        self.reserved -= segment.size

    def holders(self) -> set[int]:
        """Every pid that made a segment or is attached to one."""
        made = {s.creator for s in self._segments.values()}
        return made | {pid for s in self._segments.values() for pid in s.attached}

    def release(self, pid: int) -> None:
        """A process exited: its segments go, and its attachments."""
        for segment in list(self._segments.values()):
            if segment.creator == pid:
                self.destroy(segment)
            else:
                segment.attached.pop(pid, None)
