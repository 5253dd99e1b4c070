"""``pipe.*``: byte streams between kernel processes."""

from __future__ import annotations

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "DEFAULT_PIPE_CAPACITY",
    "MAX_PIPE_CAPACITY",
    "MAX_PIPE_IO",
    "PIPE_CLOSE",
    "PIPE_CREATE",
    "PIPE_DESTROY",
    "PIPE_READ",
    "PIPE_STATS",
    "PIPE_WRITE",
    "PipeCreateArgs",
    "PipeIdArgs",
    "PipeInfo",
    "PipeReadArgs",
    "PipeReadResult",
    "PipeStatsArgs",
    "PipeStatsResult",
    "PipeWriteArgs",
    "PipeWriteResult",
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
    summary="Close the caller's end of a pipe.",
    args=PipeIdArgs,
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

SPECS = (PIPE_CREATE, PIPE_WRITE, PIPE_READ, PIPE_CLOSE, PIPE_DESTROY, PIPE_STATS)
