"""What a file-system backend offers the VFS, and the errors it speaks.

A backend serves one mount. It is addressed with the parts of a path below its mount
point (``()`` is the mount's root), already clean (see :func:`kernel.vfs.vpath`): it
never sees ``..``. Every failure is a typed syscall error with the POSIX code a file
system would give.
"""

from __future__ import annotations

import abc
import enum
import errno
import os
from dataclasses import dataclass

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallExhaustedError,
    SyscallExistsError,
    SyscallInvalidArgumentError,
    SyscallNotFoundError,
    SyscallPermissionError,
    SyscallPreconditionError,
)

__all__ = [
    "Backend",
    "DirEntry",
    "FileHandle",
    "FileKind",
    "FileStat",
    "Parts",
    "WriteMode",
    "fs_error",
]

Parts = tuple[str, ...]
"""A clean path below a mount point, as its components."""


class FileKind(enum.StrEnum):
    """What a name is."""

    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"  # listed, never followed
    OTHER = "other"  # a socket, a FIFO, a device node: listed, never opened


class WriteMode(enum.StrEnum):
    """How ``write`` treats what is there."""

    REPLACE = "replace"  # create or truncate, then write
    APPEND = "append"  # create if missing, write at the end
    CREATE = "create"  # create; EEXIST if it exists


@dataclass(frozen=True)
class FileStat:
    """What ``fs.stat`` tells about a name."""

    kind: FileKind
    size: int
    modified: float
    mode: int


@dataclass(frozen=True)
class DirEntry:
    """One name in a directory listing."""

    name: str
    kind: FileKind
    size: int


class FileHandle(abc.ABC):
    """An open regular file: it stays the same file if its name is moved or removed."""

    @abc.abstractmethod
    async def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer at the end)."""

    @abc.abstractmethod
    async def pwrite(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``; return the file's size after."""

    @abc.abstractmethod
    async def size(self) -> int:
        """The file's size now."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release it (idempotent; never blocks)."""


class Backend(abc.ABC):
    """Storage for one mount.

    Attributes:
        capacity: the bytes of file content it may hold (its quota), or None.
    """

    kind: str
    capacity: int | None

    @abc.abstractmethod
    async def usage(self) -> int:
        """Bytes of file content it holds."""

    @abc.abstractmethod
    async def stat(self, parts: Parts) -> FileStat:
        """Describe ``parts`` (a symlink as itself)."""

    @abc.abstractmethod
    async def list(self, parts: Parts) -> list[DirEntry]:
        """The names in directory ``parts``, sorted."""

    @abc.abstractmethod
    async def read(self, parts: Parts, *, offset: int = 0, size: int | None = None) -> bytes:
        """Bytes of file ``parts`` from ``offset`` (all of the rest if ``size`` is None)."""

    @abc.abstractmethod
    async def write(self, parts: Parts, data: bytes, *, mode: WriteMode = WriteMode.REPLACE) -> int:
        """Write file ``parts``; return its size after."""

    @abc.abstractmethod
    async def write_at(self, parts: Parts, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` of existing file ``parts``; return its size after."""

    @abc.abstractmethod
    async def truncate(self, parts: Parts, size: int) -> None:
        """Cut or extend (with zeros) file ``parts`` to ``size`` bytes."""

    @abc.abstractmethod
    async def mkdir(self, parts: Parts, *, parents: bool = False) -> None:
        """Make directory ``parts`` (and its missing parents if ``parents``)."""

    @abc.abstractmethod
    async def rmdir(self, parts: Parts, *, recursive: bool = False) -> None:
        """Remove directory ``parts``: empty, or with everything in it if ``recursive``."""

    @abc.abstractmethod
    async def delete(self, parts: Parts) -> None:
        """Remove the file (or symlink) ``parts``."""

    @abc.abstractmethod
    async def move(self, source: Parts, target: Parts) -> None:
        """Rename ``source`` to ``target`` (which must not exist)."""

    @abc.abstractmethod
    async def open(
        self,
        parts: Parts,
        *,
        writable: bool = True,
        create: bool = False,
        exclusive: bool = False,
        truncate: bool = False,
    ) -> FileHandle:
        """Open regular file ``parts`` (made if ``create``; EEXIST if ``exclusive``)."""


_ERRORS: dict[int, tuple[type[SyscallError], ErrorCode]] = {
    errno.ENOENT: (SyscallNotFoundError, ErrorCode.ENOENT),
    errno.EEXIST: (SyscallExistsError, ErrorCode.EEXIST),
    errno.ENOTEMPTY: (SyscallInvalidArgumentError, ErrorCode.ENOTEMPTY),
    errno.ENOTDIR: (SyscallInvalidArgumentError, ErrorCode.ENOTDIR),
    errno.EISDIR: (SyscallInvalidArgumentError, ErrorCode.EISDIR),
    errno.EINVAL: (SyscallInvalidArgumentError, ErrorCode.EINVAL),
    errno.ENAMETOOLONG: (SyscallInvalidArgumentError, ErrorCode.EINVAL),
    errno.EACCES: (SyscallPermissionError, ErrorCode.EACCES),
    errno.EPERM: (SyscallPermissionError, ErrorCode.EPERM),
    errno.EROFS: (SyscallPermissionError, ErrorCode.EACCES),
    errno.ELOOP: (SyscallPermissionError, ErrorCode.EPERM),  # a symlink on the way
    errno.EXDEV: (SyscallPermissionError, ErrorCode.EPERM),  # it would leave the mount
    errno.ENOSPC: (SyscallExhaustedError, ErrorCode.ENOSPC),
    errno.EDQUOT: (SyscallExhaustedError, ErrorCode.EDQUOT),
    errno.EFBIG: (SyscallExhaustedError, ErrorCode.ENOSPC),
    errno.EMFILE: (SyscallExhaustedError, ErrorCode.EMFILE),
    errno.ENFILE: (SyscallExhaustedError, ErrorCode.EMFILE),
    errno.EBUSY: (SyscallPreconditionError, ErrorCode.EBUSY),
    errno.ENXIO: (SyscallPermissionError, ErrorCode.EPERM),  # a FIFO or device: no
}


def fs_error(exc: OSError, path: str) -> SyscallError:
    """The syscall error for a file system's refusal of ``path``."""
    number = exc.errno or errno.EIO
    kind, code = _ERRORS.get(number, (SyscallError, ErrorCode.EIO))
    reason = {
        errno.ELOOP: "a symlink is in the way (symlinks are never followed)",
        errno.EXDEV: "it would leave its mount",
    }.get(number, os.strerror(number))
    return kind(f"{path}: {reason}", code=code)
