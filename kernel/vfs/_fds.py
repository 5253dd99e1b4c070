"""File descriptors: per process, numbered from 0, each naming an open file description.

As in POSIX, ``dup`` and ``dup2`` make another number for the same description (they
share its offset and flags), and the file stays the same file if its name is moved or
removed while open. A process's descriptors are closed when it exits.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.abi import ErrorCode, SyscallExhaustedError, SyscallInvalidArgumentError
from kernel.vfs._backend import FileHandle
from kernel.vfs._path import VPath

__all__ = ["MAX_FDS", "FdTable", "OpenFile"]

MAX_FDS = 1024


@dataclass(eq=False)
class OpenFile:
    """An open file description: the file, how it was opened, where reading is."""

    handle: FileHandle
    path: VPath
    readable: bool
    writable: bool
    append: bool
    offset: int = 0
    refs: int = 0


class FdTable:
    """Every process's descriptors."""

    def __init__(self, *, limit: int = MAX_FDS) -> None:
        self.limit = limit
        self._tables: dict[int, dict[int, OpenFile]] = {}

    def of(self, pid: int) -> dict[int, OpenFile]:
        """``pid``'s descriptors (a live view)."""
        return self._tables.setdefault(pid, {})

    def get(self, pid: int, fd: int) -> OpenFile:
        """What ``fd`` of ``pid`` names.

        Raises:
            SyscallInvalidArgumentError: EBADF, no such descriptor.
        """
        try:
            return self._tables[pid][fd]
        except KeyError:
            msg = f"{fd} is not an open descriptor of process {pid}"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF) from None

    def add(self, pid: int, file: OpenFile, *, at: int | None = None) -> int:
        """Give ``file`` the lowest free number (or ``at``); return it.

        Raises:
            SyscallExhaustedError: EMFILE, the process has ``limit`` open already.
        """
        table = self.of(pid)
        if at is None:
            if len(table) >= self.limit:
                msg = f"a process may hold {self.limit} descriptors"
                raise SyscallExhaustedError(msg, code=ErrorCode.EMFILE)
            at = next(n for n in range(self.limit + 1) if n not in table)
        elif at >= self.limit:
            msg = f"descriptors are numbered below {self.limit}"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF)
        table[at] = file
        file.refs += 1
        return at

    def close(self, pid: int, fd: int) -> None:
        """Close ``fd``; the file closes with its last descriptor.

        Raises:
            SyscallInvalidArgumentError: EBADF, no such descriptor.
        """
        file = self.get(pid, fd)
        del self._tables[pid][fd]
        _drop(file)

    def holders(self) -> set[int]:
        """Every pid with a descriptor table."""
        return set(self._tables)

    def release(self, pid: int) -> None:
        """Close everything ``pid`` holds."""
        for file in self._tables.pop(pid, {}).values():
            _drop(file)


def _drop(file: OpenFile) -> None:
    file.refs -= 1
    if file.refs == 0:
        file.handle.close()
