"""``sched.*``: how the containers share the CPUs, on the host's own scheduler.

Linux runs the tasks, for every container's cgroup, by the CPU weights and quotas the
scheduling policy sets on them. The kernel's own turn (``sched.next``) is a boost it
passes from process to process in the policy's order; a yield (``sched.yield``) drops
the caller's weight to the least for a while; ``sched.current`` reads who is on a CPU.
"""

from __future__ import annotations

import enum

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "MAX_YIELD_SECONDS",
    "SCHED_BACKGROUND",
    "SCHED_CURRENT",
    "SCHED_FOCUS",
    "SCHED_GET_POLICY",
    "SCHED_NEXT",
    "SCHED_SET_POLICY",
    "SCHED_STATS",
    "SCHED_YIELD",
    "SchedBackgroundArgs",
    "SchedCurrentResult",
    "SchedEntry",
    "SchedFocusArgs",
    "SchedNextResult",
    "SchedPolicy",
    "SchedPolicyArgs",
    "SchedPolicyResult",
    "SchedStatsResult",
    "SchedYieldArgs",
    "SchedYieldResult",
]

MAX_YIELD_SECONDS = 5.0


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
    turn_pid: int | None = Field(default=None, description="the process whose turn it is")


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
    turn: bool = Field(default=False, description="its turn (sched.next)")
    yielding: bool = Field(default=False, description="within a sched.yield")
    cpu_usage_us: int
    throttled_periods: int


class SchedStatsResult(WireModel):
    """Result of ``sched.stats``."""

    policy: WireEnum[SchedPolicy]
    cpus: int
    processes: list[SchedEntry]


class SchedNextResult(WireModel):
    """Result of ``sched.next``."""

    pid: int | None = Field(description="the process whose turn it is now; None: none runs")
    previous_pid: int | None = Field(description="whose turn it was")
    policy: WireEnum[SchedPolicy]


class SchedCurrentResult(WireModel):
    """Result of ``sched.current``."""

    turn_pid: int | None = Field(description="the process whose turn it is (sched.next)")
    on_cpu: list[int] = Field(description="processes with a task on a CPU at this instant")


class SchedYieldArgs(WireModel):
    """Arguments of ``sched.yield``."""

    seconds: float = Field(default=0.1, gt=0, le=MAX_YIELD_SECONDS, description="how long")


class SchedYieldResult(WireModel):
    """Result of ``sched.yield``: the caller's weight while it yielded and after."""

    pid: int
    yielded_seconds: float
    weight: int = Field(description="its cpu weight again, now the yield is over")


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

SCHED_NEXT = CallSpec(
    "sched.next", "Pass the turn (a boost) to the next process in the policy's order.",
    NoArgs, SchedNextResult, Capability.SCHEDULER_CONTROL,
)  # fmt: skip
SCHED_CURRENT = CallSpec(
    "sched.current", "Whose turn it is, and which processes are on a CPU now.", NoArgs,
    SchedCurrentResult, Capability.SYSTEM_INFO,
)  # fmt: skip
SCHED_YIELD = CallSpec(
    "sched.yield", "Weigh the least for a while, so that others run first; then as before.",
    SchedYieldArgs, SchedYieldResult, Capability.TIME_ACCESS,
)  # fmt: skip

SPECS = (
    SCHED_GET_POLICY, SCHED_SET_POLICY, SCHED_FOCUS, SCHED_BACKGROUND, SCHED_STATS,
    SCHED_NEXT, SCHED_CURRENT, SCHED_YIELD,
)  # fmt: skip
