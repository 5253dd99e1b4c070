"""``pipe.*``, ``queue.*``, ``shm.*``: streams, messages and shared memory between processes."""

from __future__ import annotations

import enum

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "DEFAULT_PIPE_CAPACITY",
    "DEFAULT_QUEUE_MESSAGE",
    "MAX_PIPE_CAPACITY",
    "MAX_PIPE_IO",
    "MAX_QUEUE_CAPACITY",
    "MAX_QUEUE_MESSAGE",
    "MAX_SEGMENT_BYTES",
    "PIPE_CLOSE",
    "PIPE_CREATE",
    "PIPE_DESTROY",
    "PIPE_READ",
    "PIPE_STATS",
    "PIPE_WRITE",
    "QUEUE_CLOSE",
    "QUEUE_CREATE",
    "QUEUE_DESTROY",
    "QUEUE_RECEIVE",
    "QUEUE_SEND",
    "QUEUE_STATS",
    "QUEUE_SUBSCRIBE",
    "QUEUE_UNSUBSCRIBE",
    "SHM_ATTACH",
    "SHM_CREATE",
    "SHM_DESTROY",
    "SHM_DETACH",
    "SHM_READ",
    "SHM_STATS",
    "SHM_WRITE",
    "AppAccess",
    "PipeCloseArgs",
    "PipeCreateArgs",
    "PipeEnd",
    "PipeIdArgs",
    "PipeInfo",
    "PipeReadArgs",
    "PipeReadResult",
    "PipeStatsArgs",
    "PipeStatsResult",
    "PipeWriteArgs",
    "PipeWriteResult",
    "QueueCreateArgs",
    "QueueIdArgs",
    "QueueInfo",
    "QueueMessage",
    "QueueReceiveArgs",
    "QueueSendArgs",
    "QueueSendResult",
    "QueueStatsArgs",
    "QueueStatsResult",
    "QueueType",
    "ShmAttachArgs",
    "ShmAttachResult",
    "ShmCreateArgs",
    "ShmIdArgs",
    "ShmInfo",
    "ShmReadArgs",
    "ShmReadResult",
    "ShmStatsArgs",
    "ShmStatsResult",
    "ShmWriteArgs",
]

MAX_PIPE_IO = 1 << 20
DEFAULT_PIPE_CAPACITY = 64 * 1024
MAX_PIPE_CAPACITY = 1 << 20
_WAIT = Field(default=None, gt=0, le=3600, description="seconds to wait at most; None: no bound")


class PipeCreateArgs(WireModel):
    """Arguments of ``pipe.create``."""

    reader_pid: int | None = Field(default=None, ge=1, description="the caller if None")
    writer_pid: int | None = Field(default=None, ge=1, description="the caller if None")
    capacity: int = Field(
        default=DEFAULT_PIPE_CAPACITY, ge=1, le=MAX_PIPE_CAPACITY, description="bytes it holds"
    )


class PipeInfo(WireModel):
    """One pipe."""

    pipe_id: int
    creator_pid: int
    reader_pid: int
    writer_pid: int
    capacity: int
    buffered: int = Field(description="bytes written and not yet read")
    bytes_written: int
    bytes_read: int
    write_closed: bool
    read_closed: bool


class PipeIdArgs(WireModel):
    """A call on one pipe."""

    pipe_id: int = Field(ge=1)


class PipeEnd(enum.StrEnum):
    """One end of a pipe."""

    READ = "read"
    WRITE = "write"


class PipeCloseArgs(WireModel):
    """Arguments of ``pipe.close``."""

    pipe_id: int = Field(ge=1)
    end: WireEnum[PipeEnd] | None = Field(
        default=None, description="which end; every end the caller holds if None"
    )


class PipeWriteArgs(WireModel):
    """Arguments of ``pipe.write``."""

    pipe_id: int = Field(ge=1)
    data: bytes = Field(max_length=MAX_PIPE_IO)
    nonblocking: bool = Field(default=False, description="EAGAIN rather than wait for room")
    timeout: float | None = _WAIT


class PipeWriteResult(WireModel):
    """Result of ``pipe.write``."""

    written: int = Field(description="all of it, or what fitted without waiting / in time")


class PipeReadArgs(WireModel):
    """Arguments of ``pipe.read``."""

    pipe_id: int = Field(ge=1)
    size: int = Field(default=64 * 1024, ge=1, le=MAX_PIPE_IO)
    nonblocking: bool = Field(default=False, description="EAGAIN rather than wait for data")
    timeout: float | None = _WAIT


class PipeReadResult(WireModel):
    """Result of ``pipe.read``."""

    data: bytes
    eof: bool = Field(description="the writer closed and everything was read")


class PipeStatsArgs(WireModel):
    """Arguments of ``pipe.stats``."""

    pipe_id: int | None = Field(default=None, ge=1, description="one pipe; the caller's if None")


class PipeStatsResult(WireModel):
    """Result of ``pipe.stats``."""

    pipes: list[PipeInfo]
    reserved_bytes: int = Field(description="capacity all pipes reserve together")
    budget_bytes: int


PIPE_CREATE = CallSpec(
    name="pipe.create",
    summary="Make a pipe from a writer to a reader (the caller or its descendants).",
    args=PipeCreateArgs,
    result=PipeInfo,
    capability=Capability.SEND_MESSAGE,
)
PIPE_WRITE = CallSpec(
    name="pipe.write",
    summary="Write to a pipe (its writer); waits while it is full.",
    args=PipeWriteArgs,
    result=PipeWriteResult,
    capability=Capability.SEND_MESSAGE,
)
PIPE_READ = CallSpec(
    name="pipe.read",
    summary="Read from a pipe (its reader); waits while it is empty; EOF once closed.",
    args=PipeReadArgs,
    result=PipeReadResult,
    capability=Capability.RECEIVE_MESSAGE,
)
PIPE_CLOSE = CallSpec(
    name="pipe.close",
    summary="Close the caller's end (or ends) of a pipe.",
    args=PipeCloseArgs,
    result=PipeInfo,
    capability=Capability.SEND_MESSAGE,
)
PIPE_DESTROY = CallSpec(
    name="pipe.destroy",
    summary="Remove a pipe the caller made; its waiters get EPIPE.",
    args=PipeIdArgs,
    result=NoArgs,
    capability=Capability.SEND_MESSAGE,
)
PIPE_STATS = CallSpec(
    name="pipe.stats",
    summary="Pipes the caller made or holds an end of, and the global budget.",
    args=PipeStatsArgs,
    result=PipeStatsResult,
    capability=Capability.SYSTEM_INFO,
)

_PIPE_SPECS = (PIPE_CREATE, PIPE_WRITE, PIPE_READ, PIPE_CLOSE, PIPE_DESTROY, PIPE_STATS)


# ------------------------------------------------------------------------------ queues

MAX_QUEUE_MESSAGE = 1 << 20
DEFAULT_QUEUE_MESSAGE = 64 * 1024
MAX_QUEUE_CAPACITY = 10_000


class QueueType(enum.StrEnum):
    """How a queue hands out its messages."""

    FIFO = "fifo"
    PRIORITY = "priority"
    PUBSUB = "pubsub"


class QueueCreateArgs(WireModel):
    """Arguments of ``queue.create``."""

    queue_type: WireEnum[QueueType] = QueueType.FIFO
    capacity: int = Field(
        default=1000, ge=1, le=MAX_QUEUE_CAPACITY,
        description="messages it holds (pubsub: per subscriber)",
    )  # fmt: skip
    max_message: int = Field(default=DEFAULT_QUEUE_MESSAGE, ge=1, le=MAX_QUEUE_MESSAGE)
    public: bool = Field(
        default=False,
        description="any process may use it; otherwise its creator's app and descendants",
    )


class QueueInfo(WireModel):
    """One queue."""

    queue_id: int
    queue_type: WireEnum[QueueType]
    creator_pid: int
    capacity: int
    max_message: int
    public: bool
    waiting: int = Field(description="messages not yet received (pubsub: all subscribers')")
    subscribers: int
    sent: int
    received: int
    dropped: int = Field(description="pubsub messages slow subscribers lost")
    closed: bool


class QueueIdArgs(WireModel):
    """A call on one queue."""

    queue_id: int = Field(ge=1)


class QueueSendArgs(WireModel):
    """Arguments of ``queue.send``."""

    queue_id: int = Field(ge=1)
    data: bytes = Field(max_length=MAX_QUEUE_MESSAGE)
    priority: int = Field(default=0, ge=-1000, le=1000, description="higher first (priority)")
    nonblocking: bool = Field(default=False, description="EAGAIN rather than wait for room")
    timeout: float | None = _WAIT


class QueueSendResult(WireModel):
    """Result of ``queue.send``."""

    seq: int = Field(description="the message's number, unique in the kernel")
    delivered: int = Field(description="1, or for pubsub the subscribers that got it")


class QueueReceiveArgs(WireModel):
    """Arguments of ``queue.receive``."""

    queue_id: int = Field(ge=1)
    nonblocking: bool = Field(default=False, description="EAGAIN rather than wait")
    timeout: float | None = _WAIT


class QueueMessage(WireModel):
    """A message received."""

    seq: int
    data: bytes
    priority: int
    sender_pid: int
    sent_at: float


class QueueStatsArgs(WireModel):
    """Arguments of ``queue.stats``."""

    queue_id: int | None = Field(default=None, ge=1, description="one queue; else those visible")


class QueueStatsResult(WireModel):
    """Result of ``queue.stats``."""

    queues: list[QueueInfo]
    held_bytes: int = Field(description="bytes of messages all queues hold")
    budget_bytes: int


QUEUE_CREATE = CallSpec(
    "queue.create", "Make a queue: fifo, priority or pubsub.", QueueCreateArgs, QueueInfo,
    Capability.SEND_MESSAGE,
)  # fmt: skip
QUEUE_SEND = CallSpec(
    "queue.send", "Send a message; waits while the queue is full (pubsub never waits).",
    QueueSendArgs, QueueSendResult, Capability.SEND_MESSAGE,
)  # fmt: skip
QUEUE_RECEIVE = CallSpec(
    "queue.receive", "Receive the next message (pubsub: from the caller's subscription).",
    QueueReceiveArgs, QueueMessage, Capability.RECEIVE_MESSAGE,
)  # fmt: skip
QUEUE_SUBSCRIBE = CallSpec(
    "queue.subscribe", "Subscribe to a pubsub queue.", QueueIdArgs, QueueInfo,
    Capability.RECEIVE_MESSAGE,
)  # fmt: skip
QUEUE_UNSUBSCRIBE = CallSpec(
    "queue.unsubscribe", "End the caller's subscription.", QueueIdArgs, QueueInfo,
    Capability.RECEIVE_MESSAGE,
)  # fmt: skip
QUEUE_CLOSE = CallSpec(
    "queue.close", "Stop a queue taking messages (its creator); receivers drain it.",
    QueueIdArgs, QueueInfo, Capability.SEND_MESSAGE,
)  # fmt: skip
QUEUE_DESTROY = CallSpec(
    "queue.destroy", "Remove a queue the caller made; its waiters get EPIPE.", QueueIdArgs,
    NoArgs, Capability.SEND_MESSAGE,
)  # fmt: skip
QUEUE_STATS = CallSpec(
    "queue.stats", "Queues the caller may use, and the global budget.", QueueStatsArgs,
    QueueStatsResult, Capability.SYSTEM_INFO,
)  # fmt: skip

_QUEUE_SPECS = (
    *_PIPE_SPECS, QUEUE_CREATE, QUEUE_SEND, QUEUE_RECEIVE, QUEUE_SUBSCRIBE, QUEUE_UNSUBSCRIBE,
    QUEUE_CLOSE, QUEUE_DESTROY, QUEUE_STATS,
)  # fmt: skip


# ----------------------------------------------------------------------- shared memory

MAX_SEGMENT_BYTES = 100 << 20


class AppAccess(enum.StrEnum):
    """What the other processes of a segment's app may do with it."""

    NONE = "none"
    READ = "read"
    WRITE = "write"


class ShmCreateArgs(WireModel):
    """Arguments of ``shm.create``."""

    size: int = Field(ge=1, le=MAX_SEGMENT_BYTES)
    app_access: WireEnum[AppAccess] = Field(
        default=AppAccess.NONE,
        description="for its creator's app; the creator and its descendants may always write",
    )


class ShmInfo(WireModel):
    """One segment."""

    shm_id: int
    creator_pid: int
    size: int
    app_access: WireEnum[AppAccess]
    attached: dict[str, str] = Field(description="pid -> 'read' or 'write'")


class ShmAttachArgs(WireModel):
    """Arguments of ``shm.attach``."""

    shm_id: int = Field(ge=1)
    read_only: bool = False
    pass_fd: bool = Field(
        default=True, description="send a descriptor to map it with the reply (SCM_RIGHTS)"
    )


class ShmAttachResult(WireModel):
    """Result of ``shm.attach``."""

    shm_id: int
    size: int
    read_only: bool
    fd_passed: bool = Field(description="a descriptor came with this reply")


class ShmIdArgs(WireModel):
    """A call on one segment."""

    shm_id: int = Field(ge=1)


class ShmReadArgs(WireModel):
    """Arguments of ``shm.read``."""

    shm_id: int = Field(ge=1)
    offset: int = Field(default=0, ge=0)
    size: int = Field(ge=0, le=MAX_PIPE_IO * 8)


class ShmReadResult(WireModel):
    """Result of ``shm.read``."""

    data: bytes


class ShmWriteArgs(WireModel):
    """Arguments of ``shm.write``."""

    shm_id: int = Field(ge=1)
    offset: int = Field(default=0, ge=0)
    data: bytes = Field(max_length=MAX_PIPE_IO * 8)


class ShmStatsArgs(WireModel):
    """Arguments of ``shm.stats``."""

    shm_id: int | None = Field(default=None, ge=1, description="one segment; else those visible")


class ShmStatsResult(WireModel):
    """Result of ``shm.stats``."""

    segments: list[ShmInfo]
    reserved_bytes: int
    budget_bytes: int


SHM_CREATE = CallSpec(
    "shm.create", "Make a shared memory segment (a sealed memfd).", ShmCreateArgs, ShmInfo,
    Capability.SEND_MESSAGE,
)  # fmt: skip
SHM_ATTACH = CallSpec(
    "shm.attach", "Attach to a segment, as allowed; a descriptor to map it comes along.",
    ShmAttachArgs, ShmAttachResult, Capability.RECEIVE_MESSAGE,
)  # fmt: skip
SHM_DETACH = CallSpec(
    "shm.detach", "Detach from a segment.", ShmIdArgs, NoArgs, Capability.RECEIVE_MESSAGE
)
SHM_READ = CallSpec(
    "shm.read", "Read an attached segment through the kernel.", ShmReadArgs, ShmReadResult,
    Capability.RECEIVE_MESSAGE,
)  # fmt: skip
SHM_WRITE = CallSpec(
    "shm.write", "Write a segment attached read-write, through the kernel.", ShmWriteArgs,
    NoArgs, Capability.SEND_MESSAGE,
)  # fmt: skip
SHM_DESTROY = CallSpec(
    "shm.destroy", "Remove a segment the caller made.", ShmIdArgs, NoArgs,
    Capability.SEND_MESSAGE,
)  # fmt: skip
SHM_STATS = CallSpec(
    "shm.stats", "Segments the caller may attach to, and the global budget.", ShmStatsArgs,
    ShmStatsResult, Capability.SYSTEM_INFO,
)  # fmt: skip

SPECS = (
    *_QUEUE_SPECS, SHM_CREATE, SHM_ATTACH, SHM_DETACH, SHM_READ, SHM_WRITE, SHM_DESTROY, SHM_STATS
)  # fmt: skip
