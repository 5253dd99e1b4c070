"""Handlers of ``pipe.*``, ``queue.*`` and ``shm.*``: who may use which of them."""

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
    SHM_ATTACH,
    SHM_CREATE,
    SHM_DESTROY,
    SHM_DETACH,
    SHM_READ,
    SHM_STATS,
    SHM_WRITE,
    AppAccess,
    PipeCloseArgs,
    PipeCreateArgs,
    PipeEnd,
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
    ShmAttachArgs,
    ShmAttachResult,
    ShmCreateArgs,
    ShmIdArgs,
    ShmInfo,
    ShmReadArgs,
    ShmReadResult,
    ShmStatsArgs,
    ShmStatsResult,
    ShmWriteArgs,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.ipc import Pipe, PipeTable, Queue, QueueTable, Segment, ShmTable
from kernel.proc import KERNEL_PID, ProcessTable

__all__ = ["PipeCalls", "QueueCalls", "ShmCalls"]


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

    async def close(self, ctx: CallContext, args: PipeCloseArgs) -> PipeInfo:
        """``pipe.close``: the caller's end or ends (the admin as itself: those asked)."""
        pipe = self._pipe(ctx, args.pipe_id, "writer", "reader")
        writer = args.end in (None, PipeEnd.WRITE)
        reader = args.end in (None, PipeEnd.READ)
        if ctx.caller.capabilities is None and ctx.caller.pid == KERNEL_PID:
            if writer:
                self.pipes.close(pipe, pipe.writer, reader=False)
            if reader and not pipe.destroyed:
                self.pipes.close(pipe, pipe.reader, writer=False)
        else:
            self.pipes.close(pipe, ctx.caller.pid, writer=writer, reader=reader)
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


def _shm_info(segment: Segment) -> ShmInfo:
    return ShmInfo(
        shm_id=segment.id, creator_pid=segment.creator, size=segment.size,
        app_access=AppAccess(segment.app_access),
        attached={str(pid): "read" if ro else "write" for pid, ro in segment.attached.items()},
    )  # fmt: skip


class ShmCalls:
    """Shared memory segments for the processes of ``processes``.

    The creator and its descendants may attach read-write; the other processes of the
    creator's app as the segment's ``app_access`` says; nobody else.
    """

    def __init__(self, segments: ShmTable, processes: ProcessTable) -> None:
        self.segments = segments
        self._processes = processes
        processes.on_exit(segments.release)

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(SHM_CREATE, self.create)
        table.bind(SHM_ATTACH, self.attach)
        table.bind(SHM_DETACH, self.detach)
        table.bind(SHM_READ, self.read)
        table.bind(SHM_WRITE, self.write)
        table.bind(SHM_DESTROY, self.destroy)
        table.bind(SHM_STATS, self.stats)

    def _access(self, ctx: CallContext, segment: Segment) -> AppAccess:
        caller = ctx.caller
        if caller.capabilities is None or self._processes.is_within(caller.pid, segment.creator):
            return AppAccess.WRITE
        process = self._processes.find(caller.pid)
        if segment.app_id is not None and process.app_id == segment.app_id:
            return AppAccess(segment.app_access)
        return AppAccess.NONE

    def _attached(self, ctx: CallContext, shm_id: int, *, writing: bool) -> Segment:
        """The segment, if the caller is attached to it (read-write when ``writing``)."""
        segment = self.segments.get(shm_id)
        if ctx.caller.capabilities is None and ctx.caller.pid == KERNEL_PID:
            return segment
        read_only = segment.attached.get(ctx.caller.pid)
        if read_only is None or (writing and read_only):
            how = "read-write" if writing else "at all"
            msg = f"process {ctx.caller.pid} is not attached to segment {shm_id} {how}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        return segment

    async def create(self, ctx: CallContext, args: ShmCreateArgs) -> ShmInfo:
        """``shm.create``."""
        if ctx.caller.pid == KERNEL_PID:
            msg = "segments belong to processes: act as one with as_pid"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        segment = self.segments.create(
            creator=ctx.caller.pid, app_id=self._processes.get(ctx.caller.pid).app_id,
            size=args.size, app_access=args.app_access,
        )  # fmt: skip
        return _shm_info(segment)

    async def attach(self, ctx: CallContext, args: ShmAttachArgs) -> ShmAttachResult:
        """``shm.attach``: as the caller is allowed; with a descriptor to map it."""
        segment = self.segments.get(args.shm_id)
        access = self._access(ctx, segment)
        wanted = AppAccess.READ if args.read_only else AppAccess.WRITE
        if access is AppAccess.NONE or (wanted is AppAccess.WRITE and access is AppAccess.READ):
            msg = f"process {ctx.caller.pid} may not attach to segment {segment.id} to {wanted}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        if ctx.caller.pid != KERNEL_PID:
            segment.attached[ctx.caller.pid] = args.read_only
        passed = False
        if args.pass_fd and ctx.send_fd is not None:
            ctx.send_fd(self.segments.descriptor(segment, read_only=args.read_only))
            passed = True
        return ShmAttachResult(
            shm_id=segment.id, size=segment.size, read_only=args.read_only, fd_passed=passed
        )

    async def detach(self, ctx: CallContext, args: ShmIdArgs) -> NoArgs:
        """``shm.detach``."""
        segment = self.segments.get(args.shm_id)
        if segment.attached.pop(ctx.caller.pid, None) is None:
            msg = f"process {ctx.caller.pid} is not attached to segment {segment.id}"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        return NoArgs()

    async def read(self, ctx: CallContext, args: ShmReadArgs) -> ShmReadResult:
        """``shm.read``."""
        segment = self._attached(ctx, args.shm_id, writing=False)
        return ShmReadResult(data=self.segments.read(segment, args.offset, args.size))

    async def write(self, ctx: CallContext, args: ShmWriteArgs) -> NoArgs:
        """``shm.write``."""
        segment = self._attached(ctx, args.shm_id, writing=True)
        self.segments.write(segment, args.offset, args.data)
        return NoArgs()

    async def destroy(self, ctx: CallContext, args: ShmIdArgs) -> NoArgs:
        """``shm.destroy``: its creator's."""
        segment = self.segments.get(args.shm_id)
        if ctx.caller.capabilities is not None and ctx.caller.pid != segment.creator:
            msg = f"only process {segment.creator} may destroy segment {segment.id}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        self.segments.destroy(segment)
        return NoArgs()

    async def stats(self, ctx: CallContext, args: ShmStatsArgs) -> ShmStatsResult:
        """``shm.stats``: one segment, or all the caller may attach to."""
        if args.shm_id is not None:
            segment = self.segments.get(args.shm_id)
            if self._access(ctx, segment) is AppAccess.NONE:
                msg = f"segment {segment.id} is not the caller's to see"
                raise SyscallPermissionError(msg, call=ctx.spec.name)
            segments = [segment]
        else:
            segments = [
                s for s in self.segments.segments() if self._access(ctx, s) is not AppAccess.NONE
            ]
        return ShmStatsResult(
            segments=[_shm_info(s) for s in segments], reserved_bytes=self.segments.reserved,
            budget_bytes=self.segments.budget,
        )  # fmt: skip
