"""``sys.*``: the kernel describing itself."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi._messages import MAX_REQUEST_ID
from sandbox.capabilities import Capability

__all__ = [
    "SYS_CALLS",
    "SYS_CANCEL",
    "SYS_INFO",
    "SYS_PING",
    "CallInfo",
    "NoArgs",
    "SysCallsArgs",
    "SysCallsResult",
    "SysCancelArgs",
    "SysCancelResult",
    "SysInfoResult",
    "SysPingArgs",
    "SysPingResult",
]


class NoArgs(WireModel):
    """A call that takes no arguments."""


class SysPingArgs(WireModel):
    """Arguments of ``sys.ping``."""

    data: str = Field(default="", max_length=4096, description="echoed back unchanged")


class SysPingResult(WireModel):
    """Result of ``sys.ping``."""

    data: str
    kernel_time: float = Field(description="the kernel's clock, Unix seconds")


class SysInfoResult(WireModel):
    """Result of ``sys.info``: the kernel and the host it runs on."""

    name: str
    version: str
    pid: int = Field(description="the kernel daemon's OS pid")
    uid: int = Field(description="the uid the kernel runs as")
    hostname: str
    os: str
    kernel_release: str
    arch: str
    python: str
    cpu_count: int
    memory_total_bytes: int
    started_at: float = Field(description="Unix seconds")
    uptime_seconds: float
    processes: int = Field(description="live entries in the process table")
    calls: int = Field(description="syscalls in the catalog")


class SysCallsArgs(WireModel):
    """Arguments of ``sys.calls``."""

    category: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9_]*$", description="only calls of this category"
    )


class CallInfo(WireModel):
    """One catalog entry as ``sys.calls`` lists it."""

    name: str
    category: str
    summary: str
    capability: WireEnum[Capability] | None
    streaming: bool
    args_schema: dict[str, Any]
    result_schema: dict[str, Any]
    item_schema: dict[str, Any] | None


class SysCallsResult(WireModel):
    """Result of ``sys.calls``."""

    calls: list[CallInfo]


class SysCancelArgs(WireModel):
    """Arguments of ``sys.cancel``."""

    id: int = Field(ge=0, le=MAX_REQUEST_ID, description="a request in flight on this connection")


class SysCancelResult(WireModel):
    """Result of ``sys.cancel``."""

    cancelled: bool = Field(
        description="it was in flight and is now cancelled (its final reply: ECANCELED)"
    )


SYS_PING = CallSpec(
    name="sys.ping",
    summary="Round trip: echo data back with the kernel's clock.",
    args=SysPingArgs,
    result=SysPingResult,
    capability=None,
)
SYS_INFO = CallSpec(
    name="sys.info",
    summary="Describe the kernel and its host.",
    args=NoArgs,
    result=SysInfoResult,
    capability=Capability.SYSTEM_INFO,
)
SYS_CALLS = CallSpec(
    name="sys.calls",
    summary="List the syscall catalog with each call's schemas and required capability.",
    args=SysCallsArgs,
    result=SysCallsResult,
    capability=None,
)

SYS_CANCEL = CallSpec(
    name="sys.cancel",
    summary=(
        "Cancel a request in flight on this connection (a stream, a wait); its final reply"
        " is ECANCELED. Open to all: it reaches the caller's own requests only."
    ),
    args=SysCancelArgs,
    result=SysCancelResult,
    capability=None,
)

SPECS = (SYS_PING, SYS_INFO, SYS_CALLS, SYS_CANCEL)
