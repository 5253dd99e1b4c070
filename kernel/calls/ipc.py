"""Handlers of ``pipe.*`` and ``queue.*``: who may use which pipe and queue."""

from __future__ import annotations

from kernel.abi import SyscallInvalidArgumentError, SyscallPermissionError
from kernel.abi.ipc import (
    PIPE_CLOSE,
    PIPE_CREATE,
    PIPE_DESTROY,
    PIPE_READ,
    PIPE_STATS,
    PIPE_WRITE,
    QUEUE_CLOSE,
    QUEUE_CREATE,
    QUEUE_DESTROY,
    QUEUE_RECEIVE,
    QUEUE_SEND,
    QUEUE_STATS,
    QUEUE_SUBSCRIBE,
    QUEUE_UNSUBSCRIBE,
    PipeCreateArgs,
    PipeIdArgs,
    PipeInfo,
    PipeReadArgs,
    PipeReadResult,
    PipeStatsArgs,
    PipeStatsResult,
    PipeWriteArgs,
    PipeWriteResult,
    QueueCreateArgs,
    QueueIdArgs,
    QueueInfo,
    QueueMessage,
    QueueReceiveArgs,
    QueueSendArgs,
    QueueSendResult,
    QueueStatsArgs,
    QueueStatsResult,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.ipc import Pipe, PipeTable, Queue, QueueTable
from kernel.proc import KERNEL_PID, ProcessTable

__all__ = ["PipeCalls", "QueueCalls"]


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


def _queue_info(queue: Queue) -> QueueInfo:
    inboxes = [queue.inbox, *queue.subscribers.values()]
    return QueueInfo(
        queue_id=queue.id, queue_type=queue.kind, creator_pid=queue.creator,
        capacity=queue.capacity, max_message=queue.max_message, public=queue.public,
        waiting=sum(len(inbox) for inbox in inboxes), subscribers=len(queue.subscribers),
        sent=queue.sent, received=queue.received,
        dropped=sum(inbox.dropped for inbox in inboxes), closed=queue.closed,
    )  # fmt: skip


class QueueCalls:
    """Message queues for the processes of ``processes``; released when one exits.

    A queue is for its creator's app (processes with the same app id), the creator's
    descendants, and, if made ``public``, any process with the capability.
    """

    def __init__(self, queues: QueueTable, processes: ProcessTable) -> None:
        self.queues = queues
        self._processes = processes
        processes.on_exit(queues.release)

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(QUEUE_CREATE, self.create)
        table.bind(QUEUE_SEND, self.send)
        table.bind(QUEUE_RECEIVE, self.receive)
        table.bind(QUEUE_SUBSCRIBE, self.subscribe)
        table.bind(QUEUE_UNSUBSCRIBE, self.unsubscribe)
        table.bind(QUEUE_CLOSE, self.close)
        table.bind(QUEUE_DESTROY, self.destroy)
        table.bind(QUEUE_STATS, self.stats)

    def _may_use(self, ctx: CallContext, queue: Queue) -> bool:
        caller = ctx.caller
        if caller.capabilities is None or queue.public:
            return True
        if self._processes.is_within(caller.pid, queue.creator):
            return True
        process = self._processes.find(caller.pid)
        return queue.app_id is not None and process.app_id == queue.app_id

    def _queue(self, ctx: CallContext, queue_id: int, *, creator: bool = False) -> Queue:
        queue = self.queues.get(queue_id)
        allowed = (
            ctx.caller.capabilities is None or ctx.caller.pid == queue.creator
            if creator
            else self._may_use(ctx, queue)
        )
        if not allowed:
            whose = "its creator's" if creator else "a user's"
            msg = f"process {ctx.caller.pid} lacks {whose} rights on queue {queue.id}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        return queue

    def _process_pid(self, ctx: CallContext) -> int:
        if ctx.caller.pid == KERNEL_PID:
            msg = "queues are used by processes: act as one with as_pid"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        return ctx.caller.pid

    async def create(self, ctx: CallContext, args: QueueCreateArgs) -> QueueInfo:
        """``queue.create``."""
        pid = self._process_pid(ctx)
        queue = self.queues.create(
            creator=pid, kind=args.queue_type, capacity=args.capacity,
            max_message=args.max_message, public=args.public,
            app_id=self._processes.get(pid).app_id,
        )  # fmt: skip
        return _queue_info(queue)

    async def send(self, ctx: CallContext, args: QueueSendArgs) -> QueueSendResult:
        """``queue.send``."""
        queue = self._queue(ctx, args.queue_id)
        seq, delivered = await self.queues.send(
            queue, args.data, sender=ctx.caller.pid, priority=args.priority,
            wait=not args.nonblocking, within=args.timeout,
        )  # fmt: skip
        return QueueSendResult(seq=seq, delivered=delivered)

    async def receive(self, ctx: CallContext, args: QueueReceiveArgs) -> QueueMessage:
        """``queue.receive``."""
        queue = self._queue(ctx, args.queue_id)
        message = await self.queues.receive(
            queue, receiver=self._process_pid(ctx), wait=not args.nonblocking,
            within=args.timeout,
        )  # fmt: skip
        return QueueMessage(
            seq=message.seq, data=message.data, priority=message.priority,
            sender_pid=message.sender, sent_at=message.sent_at,
        )  # fmt: skip

    async def subscribe(self, ctx: CallContext, args: QueueIdArgs) -> QueueInfo:
        """``queue.subscribe``."""
        queue = self._queue(ctx, args.queue_id)
        self.queues.subscribe(queue, self._process_pid(ctx))
        return _queue_info(queue)

    async def unsubscribe(self, ctx: CallContext, args: QueueIdArgs) -> QueueInfo:
        """``queue.unsubscribe``."""
        queue = self._queue(ctx, args.queue_id)
        if not self.queues.unsubscribe(queue, self._process_pid(ctx)):
            msg = f"process {ctx.caller.pid} is not subscribed to queue {queue.id}"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        return _queue_info(queue)

    async def close(self, ctx: CallContext, args: QueueIdArgs) -> QueueInfo:
        """``queue.close``: its creator's."""
        queue = self._queue(ctx, args.queue_id, creator=True)
        self.queues.close(queue)
        return _queue_info(queue)

    async def destroy(self, ctx: CallContext, args: QueueIdArgs) -> NoArgs:
        """``queue.destroy``: its creator's."""
        self.queues.destroy(self._queue(ctx, args.queue_id, creator=True))
        return NoArgs()

    async def stats(self, ctx: CallContext, args: QueueStatsArgs) -> QueueStatsResult:
        """``queue.stats``: one queue, or all the caller may use."""
        if args.queue_id is not None:
            queues = [self._queue(ctx, args.queue_id)]
        else:
            queues = [q for q in self.queues.queues() if self._may_use(ctx, q)]
        return QueueStatsResult(
            queues=[_queue_info(q) for q in queues], held_bytes=self.queues.held,
            budget_bytes=self.queues.budget,
        )  # fmt: skip
