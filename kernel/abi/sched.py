"""``sched.*``: how the containers share the CPUs, on the host's own scheduler.

The kernel does not pick which process runs next: Linux does, for every container's
cgroup, by the CPU weights and quotas the scheduling policy sets on them.
"""

from __future__ import annotations

import enum

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "SCHED_BACKGROUND",
    "SCHED_FOCUS",
    "SCHED_GET_POLICY",
    "SCHED_SET_POLICY",
    "SCHED_STATS",
    "SchedBackgroundArgs",
    "SchedEntry",
    "SchedFocusArgs",
    "SchedPolicy",
    "SchedPolicyArgs",
    "SchedPolicyResult",
    "SchedStatsResult",
]


class SchedPolicy(enum.StrEnum):
    """How containers share the CPUs."""

    FAIR = "fair"  # equal weights, whatever their priorities
    PRIORITY = "priority"  # weights from priorities (nice-like: 1.25x a step)
    ROUND_ROBIN = "round_robin"  # equal weights and an equal cap: the CPUs / running ones


class SchedPolicyArgs(WireModel):
    """Arguments of ``sched.set_policy``."""

    policy: WireEnum[SchedPolicy]


class SchedPolicyResult(WireModel):
    """The scheduling state."""

    policy: WireEnum[SchedPolicy]
    focused_pid: int | None = Field(description="the process boosted (the focused app's)")
    background_pids: list[int] = Field(description="processes throttled (minimised apps')")


class SchedFocusArgs(WireModel):
    """Arguments of ``sched.focus``."""

    pid: int | None = Field(ge=1, description="the process to boost; None: no one")


class SchedBackgroundArgs(WireModel):
    """Arguments of ``sched.background``."""

    pid: int = Field(ge=1)
    background: bool = Field(description="throttle it (True) or let it run as others")


class SchedEntry(WireModel):
    """One process as the scheduler treats it."""

    pid: int
    priority: int
    weight: int = Field(description="its container's cpu weight (1..10000; 100 is default)")
    cpu_max: float | None = Field(description="its cap in CPUs")
    focused: bool
    background: bool
    cpu_usage_us: int
    throttled_periods: int


class SchedStatsResult(WireModel):
    """Result of ``sched.stats``."""

    policy: WireEnum[SchedPolicy]
    cpus: int
    processes: list[SchedEntry]


SCHED_GET_POLICY = CallSpec(
    "sched.get_policy", "The scheduling policy, the focused and the background processes.",
    NoArgs, SchedPolicyResult, Capability.SYSTEM_INFO,
)  # fmt: skip
SCHED_SET_POLICY = CallSpec(
    "sched.set_policy", "Set the scheduling policy (the kernel's administrators only).",
    SchedPolicyArgs, SchedPolicyResult, Capability.SCHEDULER_CONTROL,
)  # fmt: skip
SCHED_FOCUS = CallSpec(
    "sched.focus", "Boost one process (the focused app's; administrators only).",
    SchedFocusArgs, SchedPolicyResult, Capability.SCHEDULER_CONTROL,
)  # fmt: skip
SCHED_BACKGROUND = CallSpec(
    "sched.background", "Throttle a process, or stop throttling it (administrators only).",
    SchedBackgroundArgs, SchedPolicyResult, Capability.SCHEDULER_CONTROL,
)  # fmt: skip
SCHED_STATS = CallSpec(
    "sched.stats", "Each container's weight, cap and CPU use.", NoArgs, SchedStatsResult,
    Capability.SYSTEM_INFO,
)  # fmt: skip

SPECS = (SCHED_GET_POLICY, SCHED_SET_POLICY, SCHED_FOCUS, SCHED_BACKGROUND, SCHED_STATS)
