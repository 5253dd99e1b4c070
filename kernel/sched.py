"""The scheduling policy, as CPU weights and caps on the containers' cgroups.

Linux schedules every task; the kernel sets what it weighs. Under ``priority`` a
container's cpu weight follows its process's priority (nice-like, 1.25x a step); under
``fair`` every container weighs the same; under ``round_robin`` they weigh the same and
each is also capped at an equal share of the CPUs (the host's CPUs over the containers
running), so none takes more than its turn even when the others idle. The focused app's
process is boosted (4x its weight); background processes are throttled (weight 10, at
most a tenth of a CPU). A container's cap never exceeds its policy's ``cpus``.
"""

from __future__ import annotations

import logging
import os

import trio

from kernel.abi.process import ProcessState
from kernel.abi.sched import SchedPolicy
from kernel.proc import Process, ProcessTable
from sandbox.cgroups import Resources

__all__ = [
    "BACKGROUND_CPUS",
    "BACKGROUND_WEIGHT",
    "FOCUS_FACTOR",
    "Scheduler",
    "priority_to_weight",
]

logger = logging.getLogger("agentos.kernel.sched")

FOCUS_FACTOR = 4
BACKGROUND_WEIGHT = 10
BACKGROUND_CPUS = 0.1
DEFAULT_WEIGHT = 100


def priority_to_weight(priority: int) -> int:
    """A nice-like priority (-20..19) as a cgroup cpu.weight (1..10000; 0 is 100).

    Each step is a factor of 1.25, as between the scheduler's nice levels.
    """
    return max(1, min(10_000, round(DEFAULT_WEIGHT * 1.25 ** (-priority))))


class Scheduler:
    """The policy, the focused and background processes, and applying them."""

    def __init__(self, processes: ProcessTable, *, cpus: int | None = None) -> None:
        self._processes = processes
        self.cpus = cpus or os.cpu_count() or 1
        self.policy = SchedPolicy.PRIORITY
        self.focused: int | None = None
        self.background: set[int] = set()

    def running(self) -> list[Process]:
        """Live processes with a container."""
        return [
            p
            for p in self._processes.live()
            if p.container is not None and p.state is not ProcessState.EXITED
        ]

    def weight(self, process: Process) -> int:
        """The cpu weight ``process``'s container gets now."""
        if process.pid in self.background:
            return BACKGROUND_WEIGHT
        if self.policy is SchedPolicy.PRIORITY:
            base = priority_to_weight(process.priority)
        else:
            base = DEFAULT_WEIGHT
        if process.pid == self.focused:
            return min(10_000, base * FOCUS_FACTOR)
        return base

    def cpu_max(self, process: Process) -> float:
        """The cap, in CPUs, ``process``'s container gets now."""
        cap = process.policy.limits.cpus if process.policy is not None else float(self.cpus)
        if self.policy is SchedPolicy.ROUND_ROBIN:
            cap = min(cap, self.cpus / max(1, len(self.running())))
        if process.pid in self.background:
            cap = min(cap, BACKGROUND_CPUS)
        return cap

    async def apply(self, process: Process) -> None:
        """Set ``process``'s container's weight and cap (one that is gone is skipped)."""
        container = process.container
        if container is None:
            return
        resources = Resources(cpu_weight=self.weight(process), cpu_max=self.cpu_max(process))
        try:
            await trio.to_thread.run_sync(container.cgroup.apply, resources)
        except Exception:
            if process.state is not ProcessState.EXITED and process.ending is None:
                raise
            logger.debug("pid %d ended before its weight was set", process.pid)

    async def apply_all(self) -> None:
        """Set every running container's weight and cap."""
        for process in self.running():
            await self.apply(process)

    async def changed(self, process: Process) -> None:
        """A container started or changed priority: weigh it (round robin: re-share)."""
        if self.policy is SchedPolicy.ROUND_ROBIN:
            await self.apply_all()
        else:
            await self.apply(process)

    async def ended(self, pid: int) -> None:
        """A process ended: forget it; under round robin the others get its share."""
        self.background.discard(pid)
        if self.focused == pid:
            self.focused = None
        if self.policy is SchedPolicy.ROUND_ROBIN:
            await self.apply_all()
