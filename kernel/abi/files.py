"""``fs.*`` and ``fd.*``: the kernel's files, its mounts, and each process's open files.

Paths are absolute or relative to the caller's working directory; ``..`` is refused.
The file capabilities a call needs are checked for the path it names: a grant scoped to
``/storage/apps/notes`` reads nothing outside it.
"""

from __future__ import annotations

import enum

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.environ import CwdResult, CwdSetArgs
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "FD_CLOSE",
    "FD_DUP",
    "FD_DUP2",
    "FD_FCNTL",
    "FD_LSEEK",
    "FD_OPEN",
    "FD_READ",
    "FD_WRITE",
    "FS_COPY",
    "FS_CREATE",
    "FS_CWD_GET",
    "FS_CWD_SET",
    "FS_DELETE",
    "FS_EXISTS",
    "FS_LIST",
    "FS_MKDIR",
    "FS_MOUNT",
    "FS_MOUNTS",
    "FS_MOVE",
    "FS_READ",
    "FS_RMDIR",
    "FS_STAT",
    "FS_TRUNCATE",
    "FS_UNMOUNT",
    "FS_WRITE",
    "MAX_IO_BYTES",
    "EntryKind",
    "FdArgs",
    "FdDup2Args",
    "FdFcntlArgs",
    "FdFlags",
    "FdOffsetResult",
    "FdOpenArgs",
    "FdReadArgs",
    "FdResult",
    "FdSeekArgs",
    "FdWriteArgs",
    "FdWriteResult",
    "FsCopyArgs",
    "FsCreateArgs",
    "FsEntry",
    "FsExistsResult",
    "FsListResult",
    "FsMkdirArgs",
    "FsMountArgs",
    "FsMountInfo",
    "FsMountsResult",
    "FsPathArgs",
    "FsReadArgs",
    "FsReadResult",
    "FsRmdirArgs",
    "FsStatResult",
    "FsTruncateArgs",
    "FsWriteArgs",
    "FsWriteResult",
    "OpenMode",
    "Whence",
]

MAX_IO_BYTES = 8 << 20
"""The most one fs.read returns or one fs.write takes (larger files: offsets)."""

_PATH = Field(min_length=1, max_length=4096, description="absolute, or from the working dir")


class EntryKind(enum.StrEnum):
    """What a name is."""

    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"


class FsPathArgs(WireModel):
    """A call on one path."""

    path: str = _PATH


class FsReadArgs(WireModel):
    """Arguments of ``fs.read``."""

    path: str = _PATH
    offset: int = Field(default=0, ge=0)
    size: int | None = Field(
        default=None, ge=0, le=MAX_IO_BYTES, description=f"bytes; all (up to {MAX_IO_BYTES})"
    )


class FsReadResult(WireModel):
    """Result of ``fs.read``."""

    data: bytes
    size: int = Field(description="the file's whole size")
    eof: bool = Field(description="the data reaches the end of the file")


class FsWriteArgs(WireModel):
    """Arguments of ``fs.write``."""

    path: str = _PATH
    data: bytes = Field(max_length=MAX_IO_BYTES)
    append: bool = Field(default=False, description="add at the end instead of replacing")
    offset: int | None = Field(
        default=None, ge=0, description="write at this offset of an existing file instead"
    )


class FsCreateArgs(WireModel):
    """Arguments of ``fs.create``."""

    path: str = _PATH
    data: bytes = Field(default=b"", max_length=MAX_IO_BYTES)


class FsWriteResult(WireModel):
    """The file's size after a write."""

    size: int


class FsEntry(WireModel):
    """One name in a directory."""

    name: str
    kind: WireEnum[EntryKind]
    size: int


class FsListResult(WireModel):
    """Result of ``fs.list``."""

    path: str
    entries: list[FsEntry]


class FsExistsResult(WireModel):
    """Result of ``fs.exists``."""

    exists: bool


class FsStatResult(WireModel):
    """Result of ``fs.stat``."""

    path: str
    kind: WireEnum[EntryKind]
    size: int
    modified: float = Field(description="Unix seconds")
    mode: int
    mount: str = Field(description="the mount point serving it")


class FsMoveArgs(WireModel):
    """Arguments of ``fs.move`` and ``fs.copy``."""

    source: str = _PATH
    target: str = _PATH


FsCopyArgs = FsMoveArgs


class FsMkdirArgs(WireModel):
    """Arguments of ``fs.mkdir``."""

    path: str = _PATH
    parents: bool = Field(default=False, description="make missing parents too")


class FsRmdirArgs(WireModel):
    """Arguments of ``fs.rmdir``."""

    path: str = _PATH
    recursive: bool = Field(default=False, description="with everything in it")


class FsTruncateArgs(WireModel):
    """Arguments of ``fs.truncate``."""

    path: str = _PATH
    size: int = Field(ge=0, le=1 << 40)


class FsMountArgs(WireModel):
    """Arguments of ``fs.mount``: a memory file system (host directories are the kernel's)."""

    point: str = _PATH
    capacity: int = Field(ge=1, le=1 << 40, description="bytes of content it may hold")
    read_only: bool = False


class FsMountInfo(WireModel):
    """One mount."""

    point: str
    kind: str = Field(description="local (a host directory) or memory")
    read_only: bool
    used_bytes: int
    capacity_bytes: int | None


class FsMountsResult(WireModel):
    """Result of ``fs.mounts``."""

    mounts: list[FsMountInfo]


FS_READ = CallSpec(
    "fs.read", "Read a file (or part).", FsReadArgs, FsReadResult, Capability.READ_FILE
)
FS_WRITE = CallSpec(
    "fs.write", "Write a file: replace, append, or at an offset.", FsWriteArgs, FsWriteResult,
    Capability.WRITE_FILE,
)  # fmt: skip
FS_CREATE = CallSpec(
    "fs.create", "Make a new file (EEXIST if there is one).", FsCreateArgs, FsWriteResult,
    Capability.WRITE_FILE,
)  # fmt: skip
FS_DELETE = CallSpec("fs.delete", "Remove a file.", FsPathArgs, NoArgs, Capability.DELETE_FILE)
FS_LIST = CallSpec(
    "fs.list", "The names in a directory.", FsPathArgs, FsListResult, Capability.LIST_DIRECTORY
)
FS_EXISTS = CallSpec(
    "fs.exists", "Whether a name exists.", FsPathArgs, FsExistsResult, Capability.READ_FILE
)
FS_STAT = CallSpec("fs.stat", "Describe a name.", FsPathArgs, FsStatResult, Capability.READ_FILE)
FS_MOVE = CallSpec(
    "fs.move", "Rename a file or directory (the target must not exist).", FsMoveArgs, NoArgs,
    Capability.WRITE_FILE,
)  # fmt: skip
FS_COPY = CallSpec(
    "fs.copy", "Copy a file (the target must not exist); needs read_file on the source too.",
    FsMoveArgs, FsWriteResult, Capability.WRITE_FILE,
)  # fmt: skip
FS_MKDIR = CallSpec("fs.mkdir", "Make a directory.", FsMkdirArgs, NoArgs, Capability.CREATE_FILE)
FS_RMDIR = CallSpec("fs.rmdir", "Remove a directory.", FsRmdirArgs, NoArgs, Capability.DELETE_FILE)
FS_TRUNCATE = CallSpec(
    "fs.truncate", "Cut or extend a file.", FsTruncateArgs, FsWriteResult, Capability.WRITE_FILE
)
FS_CWD_GET = CallSpec(
    "fs.cwd_get",
    "The caller's working directory (as sys.cwd_get).",
    NoArgs,
    CwdResult,
    Capability.SYSTEM_INFO,
)
FS_CWD_SET = CallSpec(
    "fs.cwd_set", "Change the caller's working directory to an existing one (as sys.cwd_set).",
    CwdSetArgs, CwdResult, Capability.SYSTEM_INFO,
)  # fmt: skip
FS_MOUNTS = CallSpec(
    "fs.mounts", "The mount table, with use and capacity.", NoArgs, FsMountsResult,
    Capability.SYSTEM_INFO,
)  # fmt: skip
FS_MOUNT = CallSpec(
    "fs.mount", "Mount a memory file system (the kernel's administrators only).", FsMountArgs,
    FsMountInfo, Capability.SYSTEM_INFO,
)  # fmt: skip
FS_UNMOUNT = CallSpec(
    "fs.unmount", "Unmount a memory file system (administrators only).", FsPathArgs, NoArgs,
    Capability.SYSTEM_INFO,
)  # fmt: skip

_FS_SPECS = (
    FS_READ, FS_WRITE, FS_CREATE, FS_DELETE, FS_LIST, FS_EXISTS, FS_STAT, FS_MOVE, FS_COPY,
    FS_MKDIR, FS_RMDIR, FS_TRUNCATE, FS_CWD_GET, FS_CWD_SET, FS_MOUNTS, FS_MOUNT, FS_UNMOUNT,
)  # fmt: skip


# ------------------------------------------------------------------------ descriptors


class OpenMode(enum.StrEnum):
    """How ``fd.open`` opens a file, as fopen(3) modes."""

    READ = "r"  # read; it must exist
    WRITE = "w"  # write; made or emptied
    APPEND = "a"  # write at the end; made if missing
    READ_WRITE = "r+"  # both; it must exist
    WRITE_READ = "w+"  # both; made or emptied
    APPEND_READ = "a+"  # both, writes at the end; made if missing


class Whence(enum.StrEnum):
    """Where ``fd.lseek`` counts from."""

    SET = "set"
    CUR = "cur"
    END = "end"


class FdOpenArgs(WireModel):
    """Arguments of ``fd.open``."""

    path: str = _PATH
    mode: WireEnum[OpenMode] = OpenMode.READ
    exclusive: bool = Field(default=False, description="with w/a modes: EEXIST if it exists")


class FdArgs(WireModel):
    """A call on one descriptor."""

    fd: int = Field(ge=0)


class FdResult(WireModel):
    """A descriptor."""

    fd: int


class FdReadArgs(WireModel):
    """Arguments of ``fd.read``."""

    fd: int = Field(ge=0)
    size: int = Field(default=64 * 1024, ge=0, le=MAX_IO_BYTES)


class FdWriteArgs(WireModel):
    """Arguments of ``fd.write``."""

    fd: int = Field(ge=0)
    data: bytes = Field(max_length=MAX_IO_BYTES)


class FdWriteResult(WireModel):
    """Result of ``fd.write``."""

    written: int
    offset: int = Field(description="where the next read or write starts")


class FdSeekArgs(WireModel):
    """Arguments of ``fd.lseek``."""

    fd: int = Field(ge=0)
    offset: int = Field(ge=-(1 << 40), le=1 << 40)
    whence: WireEnum[Whence] = Whence.SET


class FdOffsetResult(WireModel):
    """The offset after ``fd.lseek``."""

    offset: int


class FdDup2Args(WireModel):
    """Arguments of ``fd.dup2``."""

    fd: int = Field(ge=0)
    new_fd: int = Field(ge=0)


class FdFlags(WireModel):
    """A descriptor's status flags."""

    readable: bool
    writable: bool
    append: bool


class FdFcntlArgs(WireModel):
    """Arguments of ``fd.fcntl``: read the flags, or set ``append`` (F_SETFL)."""

    fd: int = Field(ge=0)
    append: bool | None = Field(default=None, description="set O_APPEND on or off")


FD_OPEN = CallSpec(
    "fd.open", "Open a file; path capabilities as its mode needs (read_file, write_file).",
    FdOpenArgs, FdResult, Capability.READ_FILE,
)  # fmt: skip
FD_CLOSE = CallSpec("fd.close", "Close a descriptor.", FdArgs, NoArgs, Capability.READ_FILE)
FD_READ = CallSpec(
    "fd.read", "Read from the descriptor's offset, advancing it.", FdReadArgs, FsReadResult,
    Capability.READ_FILE,
)  # fmt: skip
FD_WRITE = CallSpec(
    "fd.write", "Write at the descriptor's offset (the end in append mode), advancing it.",
    FdWriteArgs, FdWriteResult, Capability.WRITE_FILE,
)  # fmt: skip
FD_LSEEK = CallSpec(
    "fd.lseek", "Move a descriptor's offset.", FdSeekArgs, FdOffsetResult, Capability.READ_FILE
)
FD_DUP = CallSpec(
    "fd.dup", "Another descriptor (the lowest free) for the same open file.", FdArgs, FdResult,
    Capability.READ_FILE,
)  # fmt: skip
FD_DUP2 = CallSpec(
    "fd.dup2", "Make new_fd name the same open file (closing what it named).", FdDup2Args,
    FdResult, Capability.READ_FILE,
)  # fmt: skip
FD_FCNTL = CallSpec(
    "fd.fcntl", "Read a descriptor's flags, or set append.", FdFcntlArgs, FdFlags,
    Capability.READ_FILE,
)  # fmt: skip

SPECS = (*_FS_SPECS, FD_OPEN, FD_CLOSE, FD_READ, FD_WRITE, FD_LSEEK, FD_DUP, FD_DUP2, FD_FCNTL)
