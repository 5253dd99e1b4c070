"""A mount held in the kernel's memory, capped in size (``/tmp``, ``/cache``).

A tree of directories and files; nothing of it touches the host's file system. Its
capacity bounds the bytes of file content, so it can never take more memory than
that (plus the names).
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field

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

__all__ = ["MemFS"]

_DIR_MODE = 0o755
_FILE_MODE = 0o644


@dataclass(eq=False)
class _File:
    data: bytearray = field(default_factory=bytearray)
    modified: float = field(default_factory=time.time)
    handles: int = 0  # open handles: an unlinked file's bytes count until the last closes
    linked: bool = True


@dataclass(eq=False)
class _Dir:
    children: dict[str, _File | _Dir] = field(default_factory=dict)
    modified: float = field(default_factory=time.time)


def _show(parts: Parts) -> str:
    return "/" + "/".join(parts)


def _fail(number: int, parts: Parts) -> Exception:
    return fs_error(OSError(number, os.strerror(number)), _show(parts))


class MemFS(Backend):
    """Files in memory, at most ``capacity`` bytes of content."""

    kind = "memory"

    def __init__(self, *, capacity: int) -> None:
        self.capacity: int = capacity
        self._root = _Dir()
        self._used = 0

    async def usage(self) -> int:
        return self._used

    # ---------------------------------------------------------------- plumbing

    def _node(self, parts: Parts) -> _File | _Dir:
        node: _File | _Dir = self._root
        for depth, name in enumerate(parts):
            if not isinstance(node, _Dir):
                raise _fail(errno.ENOTDIR, parts[:depth])
            child = node.children.get(name)
            if child is None:
                raise _fail(errno.ENOENT, parts)
            node = child
        return node

    def _dir(self, parts: Parts) -> _Dir:
        node = self._node(parts)
        if not isinstance(node, _Dir):
            raise _fail(errno.ENOTDIR, parts)
        return node

    def _file(self, parts: Parts) -> _File:
        node = self._node(parts)
        if isinstance(node, _Dir):
            raise _fail(errno.EISDIR, parts)
        return node

    def _parent(self, parts: Parts) -> tuple[_Dir, str]:
        if not parts:
            msg = "the root of a mount cannot be changed this way"
            raise SyscallPermissionError(msg)
        return self._dir(parts[:-1]), parts[-1]

    def _check_room(self, grow: int) -> None:
        if grow > 0 and self._used + grow > self.capacity:
            msg = f"the mount is full: {self._used} of {self.capacity} bytes used"
            raise SyscallExhaustedError(msg, code=ErrorCode.ENOSPC)

    # ---------------------------------------------------------------- reading

    async def stat(self, parts: Parts) -> FileStat:
        node = self._node(parts)
        if isinstance(node, _Dir):
            return FileStat(FileKind.DIRECTORY, 0, node.modified, _DIR_MODE)
        return FileStat(FileKind.FILE, len(node.data), node.modified, _FILE_MODE)

    async def list(self, parts: Parts) -> list[DirEntry]:
        directory = self._dir(parts)
        return [
            DirEntry(name, FileKind.DIRECTORY, 0)
            if isinstance(node, _Dir)
            else DirEntry(name, FileKind.FILE, len(node.data))
            for name, node in sorted(directory.children.items())
        ]

    async def read(self, parts: Parts, *, offset: int = 0, size: int | None = None) -> bytes:
        data = self._file(parts).data
        end = len(data) if size is None else offset + size
        return bytes(data[offset:end])

    # ---------------------------------------------------------------- writing

    async def write(self, parts: Parts, data: bytes, *, mode: WriteMode = WriteMode.REPLACE) -> int:
        directory, name = self._parent(parts)
        node = directory.children.get(name)
        if isinstance(node, _Dir):
            raise _fail(errno.EISDIR, parts)
        if node is not None and mode is WriteMode.CREATE:
            raise _fail(errno.EEXIST, parts)
        old = len(node.data) if node is not None else 0
        new = old + len(data) if mode is WriteMode.APPEND else len(data)
        self._check_room(new - old)
        if node is None:
            node = directory.children[name] = _File()
            directory.modified = node.modified
        if mode is WriteMode.APPEND:
            node.data += data
        else:
            node.data = bytearray(data)
        node.modified = time.time()
        self._used += new - old
        return new

    async def write_at(self, parts: Parts, offset: int, data: bytes) -> int:
        return self.write_node(self._file(parts), offset, data)

    def write_node(self, node: _File, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` of a file; its size after."""
        old = len(node.data)
        new = max(old, offset + len(data))
        self._check_room(new - old)
        if offset > old:
            node.data += bytes(offset - old)
        node.data[offset : offset + len(data)] = data
        node.modified = time.time()
        self._used += new - old
        return new

    async def truncate(self, parts: Parts, size: int) -> None:
        node = self._file(parts)
        old = len(node.data)
        self._check_room(size - old)
        if size < old:
            del node.data[size:]
        else:
            node.data += bytes(size - old)
        node.modified = time.time()
        self._used += size - old

    async def mkdir(self, parts: Parts, *, parents: bool = False) -> None:
        if not parts:
            msg = "the root of a mount exists"
            raise SyscallExistsError(msg)
        directory = self._root
        for depth, name in enumerate(parts, start=1):
            child = directory.children.get(name)
            last = depth == len(parts)
            if child is None:
                if not (parents or last):
                    raise _fail(errno.ENOENT, parts[:depth])
                child = directory.children[name] = _Dir()
                directory.modified = child.modified
            elif not isinstance(child, _Dir):
                raise _fail(errno.ENOTDIR if not last else errno.EEXIST, parts[:depth])
            elif last and not parents:
                raise _fail(errno.EEXIST, parts)
            directory = child

    async def rmdir(self, parts: Parts, *, recursive: bool = False) -> None:
        directory, name = self._parent(parts)
        node = self._dir(parts)
        if node.children and not recursive:
            raise _fail(errno.ENOTEMPTY, parts)
        for file in _files(node):
            self._unlink(file)
        del directory.children[name]
        directory.modified = time.time()

    async def delete(self, parts: Parts) -> None:
        directory, name = self._parent(parts)
        node = self._file(parts)
        self._unlink(node)
        del directory.children[name]
        directory.modified = time.time()

    def _unlink(self, node: _File) -> None:
        node.linked = False
        if not node.handles:
            self._used -= len(node.data)

    def release(self, node: _File) -> None:
        """A handle of ``node`` closed; the last one of an unlinked file frees it."""
        node.handles -= 1
        if not node.handles and not node.linked:
            self._used -= len(node.data)

    async def open(
        self,
        parts: Parts,
        *,
        writable: bool = True,
        create: bool = False,
        exclusive: bool = False,
        truncate: bool = False,
    ) -> FileHandle:
        directory, name = self._parent(parts)
        node = directory.children.get(name)
        if node is None:
            if not create:
                raise _fail(errno.ENOENT, parts)
            await self.write(parts, b"", mode=WriteMode.CREATE)
        elif exclusive:
            raise _fail(errno.EEXIST, parts)
        elif truncate:
            await self.truncate(parts, 0)
        del writable  # the descriptor layer keeps a read-only one from writing
        return _MemHandle(self, self._file(parts))

    async def move(self, source: Parts, target: Parts) -> None:
        from_dir, from_name = self._parent(source)
        node = self._node(source)
        to_dir, to_name = self._parent(target)
        if to_name in to_dir.children:
            raise _fail(errno.EEXIST, target)
        if isinstance(node, _Dir) and target[: len(source)] == source:
            raise _fail(errno.EINVAL, target)  # into itself
        del from_dir.children[from_name]
        to_dir.children[to_name] = node
        from_dir.modified = to_dir.modified = time.time()


class _MemHandle(FileHandle):
    def __init__(self, fs: MemFS, node: _File) -> None:
        self._fs = fs
        self._node = node
        self._open = True
        node.handles += 1

    async def pread(self, offset: int, size: int) -> bytes:
        return bytes(self._node.data[offset : offset + size])

    async def pwrite(self, offset: int, data: bytes) -> int:
        return self._fs.write_node(self._node, offset, data)

    async def size(self) -> int:
        return len(self._node.data)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._fs.release(self._node)


def _files(directory: _Dir) -> list[_File]:
    found: list[_File] = []
    for node in directory.children.values():
        found.extend(_files(node) if isinstance(node, _Dir) else [node])
    return found
