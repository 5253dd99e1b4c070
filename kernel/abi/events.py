"""``sys.events`` and ``sys.metrics``: what happens in the kernel, as a stream and as counters."""

from __future__ import annotations

import enum

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "SYS_EVENTS",
    "SYS_METRICS",
    "Event",
    "EventKind",
    "EventValue",
    "SysEventsArgs",
    "SysEventsResult",
    "SysMetricsResult",
]

EventValue = str | int | float | bool | None
"""A value in an event's ``data``: msgpack-native scalars only."""


class EventKind(enum.StrEnum):
    """What an event reports; the value is its wire name."""

    PROCESS_SPAWNED = "process.spawned"
    PROCESS_EXITED = "process.exited"
    PROCESS_KILLED = "process.killed"
    PROCESS_OOM = "process.oom"
    PROCESS_TIMEOUT = "process.timeout"
    PROCESS_SUSPENDED = "process.suspended"
    PROCESS_RESUMED = "process.resumed"
    LIMIT_REACHED = "limit.reached"
    CALL_DENIED = "call.denied"


class Event(WireModel):
    """One thing that happened in the kernel, as a subscriber receives it."""

    seq: int = Field(ge=1, description="increases by one per event published, for every kind")
    time: float = Field(description="when it was published, Unix seconds")
    kind: WireEnum[EventKind]
    pid: int | None = Field(description="the process it is about, if any (0: the kernel)")
    data: dict[str, EventValue] = Field(description="kind-specific fields")
    dropped: int = Field(
        default=0, ge=0, description="events this subscriber lost just before this one"
    )


class SysEventsArgs(WireModel):
    """Arguments of ``sys.events``."""

    kinds: list[WireEnum[EventKind]] | None = Field(
        default=None, max_length=len(EventKind), description="only these kinds; all if None"
    )


class SysEventsResult(WireModel):
    """Final result of ``sys.events``: sent only if the stream ends, which it does not today."""


class SysMetricsResult(WireModel):
    """Result of ``sys.metrics``."""

    text: str = Field(description="the Prometheus text exposition")
    content_type: str = Field(description="its HTTP Content-Type")


SYS_EVENTS = CallSpec(
    name="sys.events",
    summary="Stream kernel events (process life, limits, denied calls) until cancelled.",
    args=SysEventsArgs,
    result=SysEventsResult,
    capability=Capability.SYSTEM_INFO,
    item=Event,
)
SYS_METRICS = CallSpec(
    name="sys.metrics",
    summary="The kernel's metrics in the Prometheus text format.",
    args=NoArgs,
    result=SysMetricsResult,
    capability=Capability.SYSTEM_INFO,
)

SPECS = (SYS_EVENTS, SYS_METRICS)
