"""Handlers of ``pipe.*``: who may make, write, read, close and see a pipe."""

from __future__ import annotations

from kernel.abi import SyscallPermissionError
from kernel.abi.ipc import (
    PIPE_CLOSE,
    PIPE_CREATE,
    PIPE_DESTROY,
    PIPE_READ,
    PIPE_STATS,
    PIPE_WRITE,
    PipeCreateArgs,
    PipeIdArgs,
    PipeInfo,
    PipeReadArgs,
    PipeReadResult,
    PipeStatsArgs,
    PipeStatsResult,
    PipeWriteArgs,
    PipeWriteResult,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.ipc import Pipe, PipeTable
from kernel.proc import KERNEL_PID, ProcessTable

__all__ = ["PipeCalls"]


def _info(pipe: Pipe) -> PipeInfo:
    return PipeInfo(
        pipe_id=pipe.id, creator_pid=pipe.creator, reader_pid=pipe.reader,
        writer_pid=pipe.writer, capacity=pipe.capacity, buffered=len(pipe.buffer),
        bytes_written=pipe.bytes_written, bytes_read=pipe.bytes_read,
        write_closed=pipe.write_closed, read_closed=pipe.read_closed,
    )  # fmt: skip


class PipeCalls:
    """Pipes for the processes of ``processes``; released when a process exits."""

    def __init__(self, pipes: PipeTable, processes: ProcessTable) -> None:
        self.pipes = pipes
        self._processes = processes
        processes.on_exit(pipes.release)

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(PIPE_CREATE, self.create)
        table.bind(PIPE_WRITE, self.write)
        table.bind(PIPE_READ, self.read)
        table.bind(PIPE_CLOSE, self.close)
        table.bind(PIPE_DESTROY, self.destroy)
        table.bind(PIPE_STATS, self.stats)

    def _end_holder(self, ctx: CallContext, pid: int | None) -> int:
        """The process at one end: the caller by default, else one it owns (live)."""
        if pid is None:
            pid = ctx.caller.pid
        if pid == KERNEL_PID:
            msg = "a pipe's ends are processes: name them, or act as one with as_pid"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        self._processes.get(pid)  # ESRCH if there is no such live process
        if ctx.caller.capabilities is not None and not self._processes.is_within(
            pid, ctx.caller.pid
        ):
            msg = f"process {pid} is not the caller ({ctx.caller.pid}) or its descendant"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        return pid

    def _pipe(self, ctx: CallContext, pipe_id: int, *roles: str) -> Pipe:
        """The pipe, if the caller is the admin or holds one of ``roles`` in it."""
        pipe = self.pipes.get(pipe_id)
        if ctx.caller.capabilities is None:
            return pipe
        holders = {"creator": pipe.creator, "writer": pipe.writer, "reader": pipe.reader}
        if any(holders[role] == ctx.caller.pid for role in roles):
            return pipe
        msg = f"process {ctx.caller.pid} is not the {' or '.join(roles)} of pipe {pipe.id}"
        raise SyscallPermissionError(msg, call=ctx.spec.name)

    async def create(self, ctx: CallContext, args: PipeCreateArgs) -> PipeInfo:
        """``pipe.create``."""
        writer = self._end_holder(ctx, args.writer_pid)
        reader = self._end_holder(ctx, args.reader_pid)
        creator = ctx.caller.pid if ctx.caller.pid != KERNEL_PID else writer
        pipe = self.pipes.create(
            creator=creator, writer=writer, reader=reader, capacity=args.capacity
        )
        return _info(pipe)

    async def write(self, ctx: CallContext, args: PipeWriteArgs) -> PipeWriteResult:
        """``pipe.write``: the writer only."""
        pipe = self._pipe(ctx, args.pipe_id, "writer")
        written = await self.pipes.write(
            pipe, args.data, wait=not args.nonblocking, within=args.timeout
        )
        return PipeWriteResult(written=written)

    async def read(self, ctx: CallContext, args: PipeReadArgs) -> PipeReadResult:
        """``pipe.read``: the reader only."""
        pipe = self._pipe(ctx, args.pipe_id, "reader")
        data = await self.pipes.read(
            pipe, args.size, wait=not args.nonblocking, within=args.timeout
        )
        return PipeReadResult(data=data, eof=not data and pipe.write_closed)

    async def close(self, ctx: CallContext, args: PipeIdArgs) -> PipeInfo:
        """``pipe.close``: the caller's end (the admin acting as itself closes both)."""
        pipe = self._pipe(ctx, args.pipe_id, "writer", "reader")
        if ctx.caller.capabilities is None and ctx.caller.pid == KERNEL_PID:
            self.pipes.close(pipe, pipe.writer)
            if not pipe.destroyed:
                self.pipes.close(pipe, pipe.reader)
        else:
            self.pipes.close(pipe, ctx.caller.pid)
        return _info(pipe)

    async def destroy(self, ctx: CallContext, args: PipeIdArgs) -> NoArgs:
        """``pipe.destroy``: its creator only."""
        self.pipes.destroy(self._pipe(ctx, args.pipe_id, "creator"))
        return NoArgs()

    async def stats(self, ctx: CallContext, args: PipeStatsArgs) -> PipeStatsResult:
        """``pipe.stats``: one pipe the caller takes part in, or all of them."""
        if args.pipe_id is not None:
            pipes = [self._pipe(ctx, args.pipe_id, "creator", "writer", "reader")]
        elif ctx.caller.capabilities is None and ctx.caller.pid == KERNEL_PID:
            pipes = self.pipes.pipes()
        else:
            me = ctx.caller.pid
            pipes = [p for p in self.pipes.pipes() if me in (p.creator, p.writer, p.reader)]
        return PipeStatsResult(
            pipes=[_info(p) for p in pipes], reserved_bytes=self.pipes.reserved,
            budget_bytes=self.pipes.budget,
        )  # fmt: skip
