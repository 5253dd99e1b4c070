"""``mem.*``: the host's memory, the kernel's budget for containers, and reclaiming."""

from __future__ import annotations

import enum

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.process import ProcPidArgs
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "MEM_GC",
    "MEM_PROCESS_STATS",
    "MEM_STATS",
    "MemGcResult",
    "MemProcessStatsResult",
    "MemStatsResult",
    "Pressure",
]


class Pressure(enum.StrEnum):
    """How hard the host's memory is pressed, from what is available and from PSI."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class MemStatsResult(WireModel):
    """Result of ``mem.stats``."""

    total_bytes: int = Field(description="the host's memory")
    available_bytes: int = Field(description="MemAvailable: what could be had without swapping")
    budget_bytes: int = Field(description="memory the kernel lets its containers' limits add up to")
    committed_bytes: int = Field(description="the memory limits of running containers, summed")
    kernel_rss_bytes: int = Field(description="the kernel daemon's own resident memory")
    psi_some_avg10: float | None = Field(
        description="% of the last 10 s some task stalled on memory (None without PSI)"
    )
    pressure: WireEnum[Pressure]


class MemProcessStatsResult(WireModel):
    """Result of ``mem.process_stats``: one process's memory, from its cgroup."""

    pid: int
    current_bytes: int
    peak_bytes: int | None
    limit_bytes: int | None
    oom_kills: int


class MemGcResult(WireModel):
    """Result of ``mem.gc``."""

    exited_forgotten: int = Field(description="exited processes' records dropped")
    holders_swept: int = Field(
        description="processes no longer live whose pipes, queues or descriptors were freed"
    )
    objects_collected: int = Field(description="objects the kernel's own collector freed")


MEM_STATS = CallSpec(
    "mem.stats", "The host's memory, the containers' budget, and the pressure level.", NoArgs,
    MemStatsResult, Capability.SYSTEM_INFO,
)  # fmt: skip
MEM_PROCESS_STATS = CallSpec(
    "mem.process_stats", "A process's memory use and limit, from its container's cgroup.",
    ProcPidArgs, MemProcessStatsResult, Capability.SYSTEM_INFO,
)  # fmt: skip
MEM_GC = CallSpec(
    "mem.gc", "Reclaim what exited processes left: records, resources, kernel objects.",
    NoArgs, MemGcResult, Capability.MEMORY_CONTROL,
)  # fmt: skip

SPECS = (MEM_STATS, MEM_PROCESS_STATS, MEM_GC)
