"""A mount backed by a directory on the host, which no path can leave.

Every name is reached through :func:`open_beneath` from a descriptor of the root held
for the backend's life, or by an ``*at`` call on a single name relative to a parent
reached that way: ``..``, absolute paths and symlinks (also ones swapped in meanwhile)
never lead out, and nothing falls back to the host's own paths. Symlinks are listed and
can be deleted, never followed; a file with more than one hard link is refused, since
its other names may be anywhere. Blocking work runs in worker threads.

The capacity counts the bytes of regular files written through this backend, from a
walk of the tree when it is opened; what others write into the directory meanwhile
(a container, for its app's files) is found by :meth:`LocalFS.rescan`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import trio

from kernel.abi import ErrorCode, SyscallExhaustedError, SyscallExistsError, SyscallPermissionError
from kernel.vfs._backend import (
    Backend,
    DirEntry,
    FileHandle,
    FileKind,
    FileStat,
    Parts,
    WriteMode,
    fs_error,
)
from kernel.vfs._beneath import open_beneath, rename_noreplace

__all__ = ["LocalFS"]

T = TypeVar("T")

_CHUNK = 1 << 20
# The group may do what the owner may: within an app's directory (setgid, with a default
# ACL) the group is its containers'; elsewhere only the kernel can reach (storage is 0700).
_DIR_MODE = 0o770
_FILE_MODE = 0o660


def _kind(mode: int) -> FileKind:
    if stat.S_ISREG(mode):
        return FileKind.FILE
    if stat.S_ISDIR(mode):
        return FileKind.DIRECTORY
    if stat.S_ISLNK(mode):
        return FileKind.SYMLINK
    return FileKind.OTHER


def _show(parts: Parts) -> str:
    return "/" + "/".join(parts)


class LocalFS(Backend):
    """Files in the host directory ``root`` (made if missing).

    Args:
        root: the directory; everything of the mount lives below it.
        capacity: bytes of file content it may hold, or None for no quota.
    """

    kind = "local"

    def __init__(self, root: Path, *, capacity: int | None = None) -> None:
        root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        self.root = root
        self.capacity = capacity
        self._root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._used = _tree_size(self._root_fd)
        self._lock = trio.Lock()  # one change at a time keeps the usage count exact

    def close(self) -> None:
        """Release the root's descriptor."""
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    async def usage(self) -> int:
        return self._used

    async def rescan(self) -> int:
        """Count the tree again (others may write into it); return the usage."""
        async with self._lock:
            self._used = await trio.to_thread.run_sync(_tree_size, self._root_fd)
            return self._used

    # ---------------------------------------------------------------- plumbing

    async def _run(self, parts: Parts, work: Callable[[], T]) -> T:
        try:
            return await trio.to_thread.run_sync(work)
        except OSError as exc:
            raise fs_error(exc, _show(parts)) from None

    @contextlib.contextmanager
    def _fd(self, parts: Parts, flags: int, mode: int = 0) -> Iterator[int]:
        fd = open_beneath(self._root_fd, "/".join(parts) or ".", flags, mode)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _parent(self, parts: Parts) -> Iterator[tuple[int, str]]:
        """The directory holding ``parts``'s last name (a descriptor) and that name."""
        if not parts:
            msg = "the root of a mount cannot be changed this way"
            raise SyscallPermissionError(msg)
        with self._fd(parts[:-1], os.O_PATH | os.O_DIRECTORY) as parent:
            yield parent, parts[-1]

    def _check_room(self, grow: int) -> None:
        if self.capacity is not None and grow > 0 and self._used + grow > self.capacity:
            msg = f"the mount is full: {self._used} of {self.capacity} bytes used"
            raise SyscallExhaustedError(msg, code=ErrorCode.ENOSPC)

    @staticmethod
    def _regular(fd: int, parts: Parts) -> os.stat_result:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(info.st_mode):
            msg = f"{_show(parts)}: not a regular file"
            raise SyscallPermissionError(msg)
        if info.st_nlink > 1:
            msg = f"{_show(parts)}: a file with other hard links is refused"
            raise SyscallPermissionError(msg)
        return info

    # ---------------------------------------------------------------- reading

    async def stat(self, parts: Parts) -> FileStat:
        def work() -> FileStat:
            with self._fd(parts, os.O_PATH | os.O_NOFOLLOW) as fd:
                info = os.fstat(fd)
            return FileStat(
                kind=_kind(info.st_mode), size=info.st_size if stat.S_ISREG(info.st_mode) else 0,
                modified=info.st_mtime, mode=stat.S_IMODE(info.st_mode),
            )  # fmt: skip

        return await self._run(parts, work)

    async def list(self, parts: Parts) -> list[DirEntry]:
        def work() -> list[DirEntry]:
            with self._fd(parts, os.O_RDONLY | os.O_DIRECTORY) as fd:
                entries = []
                with os.scandir(fd) as names:
                    for entry in names:
                        info = entry.stat(follow_symlinks=False)
                        size = info.st_size if stat.S_ISREG(info.st_mode) else 0
                        entries.append(DirEntry(entry.name, _kind(info.st_mode), size))
            return sorted(entries, key=lambda e: e.name)

        return await self._run(parts, work)

    async def read(self, parts: Parts, *, offset: int = 0, size: int | None = None) -> bytes:
        def work() -> bytes:
            with self._fd(parts, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK) as fd:
                info = self._regular(fd, parts)
                wanted = max(0, info.st_size - offset) if size is None else size
                chunks, at = [], offset
                while wanted > 0 and (chunk := os.pread(fd, min(wanted, _CHUNK), at)):
                    chunks.append(chunk)
                    at += len(chunk)
                    wanted -= len(chunk)
                return b"".join(chunks)

        return await self._run(parts, work)

    # ---------------------------------------------------------------- writing

    async def write(self, parts: Parts, data: bytes, *, mode: WriteMode = WriteMode.REPLACE) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        if mode is WriteMode.CREATE:
            flags |= os.O_EXCL

        def work() -> int:
            with self._parent(parts) as (parent, name):
                fd = open_beneath(parent, name, flags, _FILE_MODE)
            try:
                old = self._regular(fd, parts).st_size
                new = old + len(data) if mode is WriteMode.APPEND else len(data)
                self._check_room(new - old)
                if mode is WriteMode.APPEND:
                    _write_all(fd, data, old)
                else:
                    os.ftruncate(fd, 0)
                    _write_all(fd, data, 0)
                self._used += new - old
                return new
            finally:
                os.close(fd)

        async with self._lock:
            return await self._run(parts, work)

    async def write_at(self, parts: Parts, offset: int, data: bytes) -> int:
        def work() -> int:
            with self._fd(parts, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK) as fd:
                self._regular(fd, parts)
                return self._write_counted(fd, offset, data)

        async with self._lock:
            return await self._run(parts, work)

    def _write_counted(self, fd: int, offset: int, data: bytes) -> int:
        """Write at ``offset`` within the capacity, counting growth; the size after."""
        old = os.fstat(fd).st_size
        new = max(old, offset + len(data))
        self._check_room(new - old)
        _write_all(fd, data, offset)
        self._used += new - old
        return new

    async def truncate(self, parts: Parts, size: int) -> None:
        def work() -> None:
            with self._fd(parts, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK) as fd:
                old = self._regular(fd, parts).st_size
                self._check_room(size - old)
                os.ftruncate(fd, size)
                self._used += size - old

        async with self._lock:
            await self._run(parts, work)

    async def mkdir(self, parts: Parts, *, parents: bool = False) -> None:
        if not parts:
            msg = "the root of a mount exists"
            raise SyscallExistsError(msg)

        def work() -> None:
            first = 1 if parents else len(parts)
            for depth in range(max(first, 1), len(parts) + 1):
                with self._parent(parts[:depth]) as (parent, name):
                    try:
                        os.mkdir(name, _DIR_MODE, dir_fd=parent)
                    except FileExistsError:
                        if depth == len(parts) and not parents:
                            raise
                        kind = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
                        if not stat.S_ISDIR(kind):
                            number = errno.ENOTDIR
                            raise NotADirectoryError(number, os.strerror(number)) from None

        async with self._lock:
            await self._run(parts, work)

    async def rmdir(self, parts: Parts, *, recursive: bool = False) -> None:
        def work() -> None:
            with self._parent(parts) as (parent, name):
                if recursive:
                    self._used -= _remove_tree(parent, name)
                else:
                    os.rmdir(name, dir_fd=parent)

        async with self._lock:
            await self._run(parts, work)

    async def delete(self, parts: Parts) -> None:
        def work() -> None:
            with self._parent(parts) as (parent, name):
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
                os.unlink(name, dir_fd=parent)
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    self._used -= info.st_size

        async with self._lock:
            await self._run(parts, work)

    async def open(
        self,
        parts: Parts,
        *,
        writable: bool = True,
        create: bool = False,
        exclusive: bool = False,
        truncate: bool = False,
    ) -> FileHandle:
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW | os.O_NONBLOCK
        if create:
            flags |= os.O_CREAT | (os.O_EXCL if exclusive else 0)

        def work() -> int:
            with self._parent(parts) as (parent, name):
                fd = open_beneath(parent, name, flags, _FILE_MODE)
            try:
                old = self._regular(fd, parts).st_size
                if truncate and old:
                    os.ftruncate(fd, 0)
                    self._used -= old
            except BaseException:
                os.close(fd)
                raise
            return fd

        async with self._lock:
            fd = await self._run(parts, work)
        return _LocalHandle(self, fd, parts)

    async def _grow(self, fd: int, parts: Parts, offset: int, data: bytes) -> int:
        """Write through an open handle, within the capacity; the size after."""
        async with self._lock:
            return await self._run(parts, lambda: self._write_counted(fd, offset, data))

    async def move(self, source: Parts, target: Parts) -> None:
        def work() -> None:
            with (
                self._parent(source) as (from_dir, from_name),
                self._parent(target) as (
                    to_dir,
                    to_name,
                ),
            ):
                rename_noreplace(from_dir, from_name, to_dir, to_name)

        async with self._lock:
            await self._run(target, work)


class _LocalHandle(FileHandle):
    """A host descriptor of the file, opened confined like every other access."""

    def __init__(self, fs: LocalFS, fd: int, parts: Parts) -> None:
        self._fs = fs
        self._fd = fd
        self._parts = parts

    def _live(self) -> int:
        if self._fd < 0:
            raise fs_error(OSError(errno.EBADF, os.strerror(errno.EBADF)), _show(self._parts))
        return self._fd

    async def pread(self, offset: int, size: int) -> bytes:
        fd = self._live()
        return await self._fs._run(  # noqa: SLF001 - its own file system's plumbing
            self._parts, lambda: os.pread(fd, size, offset)
        )

    async def pwrite(self, offset: int, data: bytes) -> int:
        return await self._fs._grow(self._live(), self._parts, offset, data)  # noqa: SLF001

    async def size(self) -> int:
        return os.fstat(self._live()).st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view[:_CHUNK], offset)
        view, offset = view[written:], offset + written


def _tree_size(root_fd: int) -> int:
    """Bytes of the regular files below a directory (each hard-linked one once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [open_beneath(root_fd, ".", os.O_RDONLY | os.O_DIRECTORY)]
    while stack:
        fd = stack.pop()
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                        seen.add((info.st_dev, info.st_ino))
                        total += info.st_size
                    elif stat.S_ISDIR(info.st_mode):
                        with contextlib.suppress(OSError):  # gone meanwhile
                            stack.append(open_beneath(fd, entry.name, os.O_RDONLY | os.O_DIRECTORY))
        finally:
            os.close(fd)
    return total


def _remove_tree(parent: int, name: str) -> int:
    """Remove directory ``name`` of ``parent`` and all below; bytes of files removed."""
    freed = 0
    fd = open_beneath(parent, name, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(fd) as entries:
            children = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
        for child, info in children:
            if stat.S_ISDIR(info.st_mode):
                freed += _remove_tree(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    freed += info.st_size
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
    return freed
