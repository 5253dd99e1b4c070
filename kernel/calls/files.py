"""Handlers of ``fs.*``.

Paths go from the caller's working directory through the mount table; the file
capabilities are checked for the very path a call names.
"""

from __future__ import annotations

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallInvalidArgumentError,
    SyscallPermissionError,
)
from kernel.abi.environ import SYS_CWD_GET, SYS_CWD_SET, CwdResult, CwdSetArgs
from kernel.abi.files import (
    FD_CLOSE,
    FD_DUP,
    FD_DUP2,
    FD_FCNTL,
    FD_LSEEK,
    FD_OPEN,
    FD_READ,
    FD_WRITE,
    FS_COPY,
    FS_CREATE,
    FS_CWD_GET,
    FS_CWD_SET,
    FS_DELETE,
    FS_EXISTS,
    FS_LIST,
    FS_MKDIR,
    FS_MOUNT,
    FS_MOUNTS,
    FS_MOVE,
    FS_READ,
    FS_RMDIR,
    FS_STAT,
    FS_TRUNCATE,
    FS_UNMOUNT,
    FS_WRITE,
    MAX_IO_BYTES,
    EntryKind,
    FdArgs,
    FdDup2Args,
    FdFcntlArgs,
    FdFlags,
    FdOffsetResult,
    FdOpenArgs,
    FdReadArgs,
    FdResult,
    FdSeekArgs,
    FdWriteArgs,
    FdWriteResult,
    FsCreateArgs,
    FsEntry,
    FsExistsResult,
    FsListResult,
    FsMkdirArgs,
    FsMountArgs,
    FsMountInfo,
    FsMountsResult,
    FsMoveArgs,
    FsPathArgs,
    FsReadArgs,
    FsReadResult,
    FsRmdirArgs,
    FsStatResult,
    FsTruncateArgs,
    FsWriteArgs,
    FsWriteResult,
    OpenMode,
    Whence,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.proc import KERNEL_PID, ProcessTable
from kernel.vfs import (
    ROOT,
    Backend,
    FdTable,
    MemFS,
    Mount,
    MountTable,
    OpenFile,
    Parts,
    VPath,
    WriteMode,
    vpath,
)
from sandbox.capabilities import FILE_CAPABILITIES, Capability

__all__ = ["FileCalls"]

_DIRECTORY_MODE = 0o755


class FileCalls:
    """The file calls over ``mounts``, for the processes of ``processes``."""

    def __init__(self, mounts: MountTable, processes: ProcessTable) -> None:
        self.mounts = mounts
        self.fds = FdTable()
        self._processes = processes
        processes.on_exit(self.fds.release)

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(FS_READ, self.read)
        table.bind(FS_WRITE, self.write)
        table.bind(FS_CREATE, self.create)
        table.bind(FS_DELETE, self.delete)
        table.bind(FS_LIST, self.list)
        table.bind(FS_EXISTS, self.exists)
        table.bind(FS_STAT, self.stat)
        table.bind(FS_MOVE, self.move)
        table.bind(FS_COPY, self.copy)
        table.bind(FS_MKDIR, self.mkdir)
        table.bind(FS_RMDIR, self.rmdir)
        table.bind(FS_TRUNCATE, self.truncate)
        table.bind(FS_CWD_GET, self.cwd_get)
        table.bind(FS_CWD_SET, self.cwd_set)
        table.bind(SYS_CWD_GET, self.cwd_get)
        table.bind(SYS_CWD_SET, self.cwd_set)
        table.bind(FS_MOUNTS, self.list_mounts)
        table.bind(FS_MOUNT, self.mount)
        table.bind(FS_UNMOUNT, self.unmount)
        table.bind(FD_OPEN, self.fd_open)
        table.bind(FD_CLOSE, self.fd_close)
        table.bind(FD_READ, self.fd_read)
        table.bind(FD_WRITE, self.fd_write)
        table.bind(FD_LSEEK, self.fd_lseek)
        table.bind(FD_DUP, self.fd_dup)
        table.bind(FD_DUP2, self.fd_dup2)
        table.bind(FD_FCNTL, self.fd_fcntl)

    # ---------------------------------------------------------------- plumbing

    def _cwd(self, ctx: CallContext) -> VPath:
        if ctx.caller.pid == KERNEL_PID:
            return ROOT
        return VPath(self._processes.get(ctx.caller.pid).cwd)

    def _path(self, ctx: CallContext, text: str, *needs: Capability) -> VPath:
        """``text`` as a namespace path the caller may use with each of ``needs``.

        Raises:
            SyscallInvalidArgumentError: EINVAL, a malformed path.
            SyscallPermissionError: EPERM, a grant does not reach that path.
        """
        path = vpath(text, self._cwd(ctx))
        for capability in needs:
            if not ctx.caller.may(capability, path):
                msg = f"{capability} does not reach {path}"
                raise SyscallPermissionError(msg, call=ctx.spec.name)
        return path

    def _route(self, path: VPath, *, writing: bool = False) -> tuple[Mount, Parts]:
        mount, parts = self.mounts.route(path)
        if writing and mount.read_only:
            msg = f"{path}: {mount.point} is mounted read-only"
            raise SyscallPermissionError(msg)
        return mount, parts

    # ---------------------------------------------------------------- files

    async def read(self, ctx: CallContext, args: FsReadArgs) -> FsReadResult:
        """``fs.read``."""
        path = self._path(ctx, args.path, Capability.READ_FILE)
        mount, parts = self._route(path)
        size = (await mount.backend.stat(parts)).size
        wanted = min(args.size if args.size is not None else MAX_IO_BYTES, MAX_IO_BYTES)
        data = await mount.backend.read(parts, offset=args.offset, size=wanted)
        return FsReadResult(data=data, size=size, eof=args.offset + len(data) >= size)

    async def write(self, ctx: CallContext, args: FsWriteArgs) -> FsWriteResult:
        """``fs.write``: replace, append, or write at an offset of an existing file."""
        path = self._path(ctx, args.path, Capability.WRITE_FILE)
        mount, parts = self._route(path, writing=True)
        if args.offset is not None:
            if args.append:
                msg = "append and offset exclude each other"
                raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
            return FsWriteResult(size=await mount.backend.write_at(parts, args.offset, args.data))
        mode = WriteMode.APPEND if args.append else WriteMode.REPLACE
        return FsWriteResult(size=await mount.backend.write(parts, args.data, mode=mode))

    async def create(self, ctx: CallContext, args: FsCreateArgs) -> FsWriteResult:
        """``fs.create``: a new file; EEXIST if the name is taken."""
        path = self._path(ctx, args.path, Capability.WRITE_FILE)
        mount, parts = self._route(path, writing=True)
        size = await mount.backend.write(parts, args.data, mode=WriteMode.CREATE)
        return FsWriteResult(size=size)

    async def truncate(self, ctx: CallContext, args: FsTruncateArgs) -> FsWriteResult:
        """``fs.truncate``."""
        path = self._path(ctx, args.path, Capability.WRITE_FILE)
        mount, parts = self._route(path, writing=True)
        await mount.backend.truncate(parts, args.size)
        return FsWriteResult(size=args.size)

    async def delete(self, ctx: CallContext, args: FsPathArgs) -> NoArgs:
        """``fs.delete``: a file (or a symlink, never followed)."""
        path = self._path(ctx, args.path, Capability.DELETE_FILE)
        mount, parts = self._route(path, writing=True)
        await mount.backend.delete(parts)
        return NoArgs()

    async def move(self, ctx: CallContext, args: FsMoveArgs) -> NoArgs:
        """``fs.move``: within a mount a rename; across mounts a copy, then a delete."""
        source = self._path(ctx, args.source, Capability.WRITE_FILE)
        target = self._path(ctx, args.target, Capability.WRITE_FILE)
        from_mount, from_parts = self._route(source, writing=True)
        to_mount, to_parts = self._route(target, writing=True)
        if from_mount is to_mount:
            await from_mount.backend.move(from_parts, to_parts)
        else:
            await self._copy_file(from_mount.backend, from_parts, to_mount.backend, to_parts)
            await from_mount.backend.delete(from_parts)
        return NoArgs()

    async def copy(self, ctx: CallContext, args: FsMoveArgs) -> FsWriteResult:
        """``fs.copy``: a file, to a name not yet taken."""
        source = self._path(ctx, args.source, Capability.READ_FILE)
        target = self._path(ctx, args.target, Capability.WRITE_FILE)
        from_mount, from_parts = self._route(source)
        to_mount, to_parts = self._route(target, writing=True)
        size = await self._copy_file(from_mount.backend, from_parts, to_mount.backend, to_parts)
        return FsWriteResult(size=size)

    @staticmethod
    async def _copy_file(
        source: Backend, from_parts: Parts, target: Backend, to_parts: Parts
    ) -> int:
        """Copy in bounded pieces; the target is made new (EEXIST if it is there)."""
        size = (await source.stat(from_parts)).size
        first = await source.read(from_parts, offset=0, size=min(size, MAX_IO_BYTES))
        await target.write(to_parts, first, mode=WriteMode.CREATE)
        offset = len(first)
        try:
            while offset < size:
                piece = await source.read(from_parts, offset=offset, size=MAX_IO_BYTES)
                if not piece:
                    break
                await target.write_at(to_parts, offset, piece)
                offset += len(piece)
        except BaseException:
            await target.delete(to_parts)
            raise
        return offset

    # ---------------------------------------------------------------- names

    async def list(self, ctx: CallContext, args: FsPathArgs) -> FsListResult:
        """``fs.list``: a directory, or a place above mount points (``/``)."""
        path = self._path(ctx, args.path, Capability.LIST_DIRECTORY)
        if self.mounts.is_above_mounts(path) and not self._mounted_at(path):
            names = self.mounts.points_below(path)
            entries = [FsEntry(name=name, kind=EntryKind.DIRECTORY, size=0) for name in names]
            return FsListResult(path=str(path), entries=entries)
        mount, parts = self._route(path)
        listed = await mount.backend.list(parts)
        entries = [FsEntry(name=e.name, kind=EntryKind(e.kind), size=e.size) for e in listed]
        below = {e.name for e in entries}
        entries += [  # mount points inside this directory show as directories
            FsEntry(name=name, kind=EntryKind.DIRECTORY, size=0)
            for name in self.mounts.points_below(path)
            if name not in below
        ]
        return FsListResult(path=str(path), entries=sorted(entries, key=lambda e: e.name))

    async def stat(self, ctx: CallContext, args: FsPathArgs) -> FsStatResult:
        """``fs.stat``."""
        path = self._path(ctx, args.path, Capability.READ_FILE)
        if self.mounts.is_above_mounts(path) and not self._mounted_at(path):
            return FsStatResult(
                path=str(path), kind=EntryKind.DIRECTORY, size=0, modified=0.0,
                mode=_DIRECTORY_MODE, mount="",
            )  # fmt: skip
        mount, parts = self._route(path)
        info = await mount.backend.stat(parts)
        return FsStatResult(
            path=str(path), kind=EntryKind(info.kind), size=info.size, modified=info.modified,
            mode=info.mode, mount=str(mount.point),
        )  # fmt: skip

    async def exists(self, ctx: CallContext, args: FsPathArgs) -> FsExistsResult:
        """``fs.exists``: no name (or a file where a directory would be) is False."""
        try:
            await self.stat(ctx, args)
        except SyscallError as exc:
            if exc.code not in (ErrorCode.ENOENT, ErrorCode.ENOTDIR):
                raise
            return FsExistsResult(exists=False)
        return FsExistsResult(exists=True)

    async def mkdir(self, ctx: CallContext, args: FsMkdirArgs) -> NoArgs:
        """``fs.mkdir``."""
        path = self._path(ctx, args.path, Capability.CREATE_FILE)
        mount, parts = self._route(path, writing=True)
        await mount.backend.mkdir(parts, parents=args.parents)
        return NoArgs()

    async def rmdir(self, ctx: CallContext, args: FsRmdirArgs) -> NoArgs:
        """``fs.rmdir``: empty, or with everything in it."""
        path = self._path(ctx, args.path, Capability.DELETE_FILE)
        mount, parts = self._route(path, writing=True)
        await mount.backend.rmdir(parts, recursive=args.recursive)
        return NoArgs()

    def _mounted_at(self, path: VPath) -> bool:
        return any(mount.point == path for mount in self.mounts.mounts())

    # ---------------------------------------------------------------- cwd, mounts

    async def cwd_get(self, ctx: CallContext, _args: NoArgs) -> CwdResult:
        """``fs.cwd_get`` (and ``sys.cwd_get``)."""
        return CwdResult(cwd=str(self._cwd(ctx)))

    async def cwd_set(self, ctx: CallContext, args: CwdSetArgs) -> CwdResult:
        """``fs.cwd_set`` (and ``sys.cwd_set``): to an existing directory.

        The caller must hold some file capability there (one a working directory is
        for): otherwise the call would tell it which directories exist anywhere.
        """
        if ctx.caller.pid == KERNEL_PID:
            msg = "the kernel has no working directory: name a process with as_pid"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        path = vpath(args.path, self._cwd(ctx))
        if not any(ctx.caller.may(capability, path) for capability in FILE_CAPABILITIES):
            msg = f"no file capability reaches {path}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        if self.mounts.is_above_mounts(path) and not self._mounted_at(path):
            kind = EntryKind.DIRECTORY
        else:
            mount, parts = self._route(path)
            kind = EntryKind((await mount.backend.stat(parts)).kind)
        if kind != EntryKind.DIRECTORY:
            msg = f"{path} is not a directory"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.ENOTDIR, call=ctx.spec.name)
        self._processes.get(ctx.caller.pid).cwd = str(path)
        return CwdResult(cwd=str(path))

    async def list_mounts(self, _ctx: CallContext, _args: NoArgs) -> FsMountsResult:
        """``fs.mounts``."""
        return FsMountsResult(mounts=[await _describe(m) for m in self.mounts.mounts()])

    async def mount(self, ctx: CallContext, args: FsMountArgs) -> FsMountInfo:
        """``fs.mount``: a memory file system, for the kernel's administrators."""
        ctx.require_admin()
        point = vpath(args.point)
        mount = self.mounts.mount(point, MemFS(capacity=args.capacity), read_only=args.read_only)
        return await _describe(mount)

    async def unmount(self, ctx: CallContext, args: FsPathArgs) -> NoArgs:
        """``fs.unmount``: a memory file system (the host-backed ones are the kernel's)."""
        ctx.require_admin()
        point = vpath(args.path)
        mount, parts = self.mounts.route(point)
        if parts or not isinstance(mount.backend, MemFS):
            msg = f"{point} is not a memory mount point"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        self.mounts.unmount(point)
        return NoArgs()

    # ---------------------------------------------------------------- descriptors

    def _holder(self, ctx: CallContext) -> int:
        """The process whose descriptors a call uses (the kernel itself has none)."""
        if ctx.caller.pid == KERNEL_PID:
            msg = "descriptors belong to processes: act as one with as_pid"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        return ctx.caller.pid

    async def fd_open(self, ctx: CallContext, args: FdOpenArgs) -> FdResult:
        """``fd.open``: read_file for reading, write_file for writing, on that path."""
        pid = self._holder(ctx)
        mode = args.mode
        readable = mode in (OpenMode.READ, OpenMode.READ_WRITE) or mode.endswith("+")
        writable = mode != OpenMode.READ
        needs = [Capability.READ_FILE] if readable else []
        needs += [Capability.WRITE_FILE] if writable else []
        path = self._path(ctx, args.path, *needs)
        mount, parts = self._route(path, writing=writable)
        creating = mode[0] in "wa"
        handle = await mount.backend.open(
            parts, writable=writable, create=creating, exclusive=creating and args.exclusive,
            truncate=mode[0] == "w",
        )  # fmt: skip
        file = OpenFile(handle, path, readable, writable, append=mode[0] == "a")
        try:
            return FdResult(fd=self.fds.add(pid, file))
        except BaseException:
            handle.close()
            raise

    async def fd_close(self, ctx: CallContext, args: FdArgs) -> NoArgs:
        """``fd.close``."""
        self.fds.close(self._holder(ctx), args.fd)
        return NoArgs()

    async def fd_read(self, ctx: CallContext, args: FdReadArgs) -> FsReadResult:
        """``fd.read``: from its offset, which moves past what was read."""
        file = self.fds.get(self._holder(ctx), args.fd)
        if not file.readable:
            msg = f"descriptor {args.fd} is not open for reading"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF, call=ctx.spec.name)
        data = await file.handle.pread(file.offset, args.size)
        file.offset += len(data)
        size = await file.handle.size()
        return FsReadResult(data=data, size=size, eof=file.offset >= size)

    async def fd_write(self, ctx: CallContext, args: FdWriteArgs) -> FdWriteResult:
        """``fd.write``: at its offset (the end in append mode), which moves past it."""
        file = self.fds.get(self._holder(ctx), args.fd)
        if not file.writable:
            msg = f"descriptor {args.fd} is not open for writing"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF, call=ctx.spec.name)
        if not ctx.caller.may(Capability.WRITE_FILE, file.path):  # grants can only shrink
            msg = f"write_file does not reach {file.path}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        if file.append:
            file.offset = await file.handle.size()
        await file.handle.pwrite(file.offset, args.data)
        file.offset += len(args.data)
        return FdWriteResult(written=len(args.data), offset=file.offset)

    async def fd_lseek(self, ctx: CallContext, args: FdSeekArgs) -> FdOffsetResult:
        """``fd.lseek``: past the end is allowed (a write there leaves zeros), before 0 not."""
        file = self.fds.get(self._holder(ctx), args.fd)
        base = {
            Whence.SET: 0,
            Whence.CUR: file.offset,
            Whence.END: await file.handle.size(),
        }[args.whence]
        if base + args.offset < 0:
            msg = f"offset {base + args.offset} is before the start of the file"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        file.offset = base + args.offset
        return FdOffsetResult(offset=file.offset)

    async def fd_dup(self, ctx: CallContext, args: FdArgs) -> FdResult:
        """``fd.dup``."""
        pid = self._holder(ctx)
        return FdResult(fd=self.fds.add(pid, self.fds.get(pid, args.fd)))

    async def fd_dup2(self, ctx: CallContext, args: FdDup2Args) -> FdResult:
        """``fd.dup2``: ``new_fd`` names ``fd``'s file; what it named is closed first."""
        pid = self._holder(ctx)
        file = self.fds.get(pid, args.fd)
        if args.new_fd == args.fd:
            return FdResult(fd=args.fd)
        if args.new_fd in self.fds.of(pid):
            self.fds.close(pid, args.new_fd)
        return FdResult(fd=self.fds.add(pid, file, at=args.new_fd))

    async def fd_fcntl(self, ctx: CallContext, args: FdFcntlArgs) -> FdFlags:
        """``fd.fcntl``: its flags; ``append`` may be switched (F_SETFL)."""
        file = self.fds.get(self._holder(ctx), args.fd)
        if args.append is not None:
            if not file.writable:
                msg = f"descriptor {args.fd} is not open for writing"
                raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF, call=ctx.spec.name)
            file.append = args.append
        return FdFlags(readable=file.readable, writable=file.writable, append=file.append)


async def _describe(mount: Mount) -> FsMountInfo:
    return FsMountInfo(
        point=str(mount.point), kind=mount.backend.kind, read_only=mount.read_only,
        used_bytes=await mount.backend.usage(), capacity_bytes=mount.backend.capacity,
    )  # fmt: skip
