"""The scheduling policy, as CPU weights and caps on the containers' cgroups.

Linux schedules every task; the kernel sets what it weighs. Under ``priority`` a
container's cpu weight follows its process's priority (nice-like, 1.25x a step); under
``fair`` every container weighs the same; under ``round_robin`` they weigh the same and
each is also capped at an equal share of the CPUs (the host's CPUs over the containers
running), so none takes more than its turn even when the others idle. The focused app's
process is boosted (4x its weight); background processes are throttled (weight 10, at
most a tenth of a CPU). A container's cap never exceeds its policy's ``cpus``.

The kernel's turn passes from process to process (``sched.next``) in the policy's order:
the highest priority first (``priority``), the least CPU used so far (``fair``), or each
in turn by pid (``round_robin``), ties in turn too. Whose turn it is weighs 4x, as the
focused process does. A process yielding (``sched.yield``) weighs the least, 1, for the
while it asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import trio

from kernel.abi.process import ProcessState
from kernel.abi.sched import SchedPolicy
from kernel.proc import Process, ProcessTable
from sandbox.cgroups import Resources

__all__ = [
    "BACKGROUND_CPUS",
    "BACKGROUND_WEIGHT",
    "FOCUS_FACTOR",
    "TURN_FACTOR",
    "YIELD_WEIGHT",
    "Scheduler",
    "priority_to_weight",
]

logger = logging.getLogger("agentos.kernel.sched")

FOCUS_FACTOR = 4
TURN_FACTOR = 4
YIELD_WEIGHT = 1
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
        self.turn: int | None = None
        self._yielding: dict[int, int] = {}  # pid -> yields under way

    def running(self) -> list[Process]:
        """Live processes with a container."""
        return [
            p
            for p in self._processes.live()
            if p.container is not None and p.state is not ProcessState.EXITED
        ]

    def base_weight(self, process: Process) -> int:
        """``process``'s weight by the policy alone: its priority's, or the default."""
        if self.policy is SchedPolicy.PRIORITY:
            return priority_to_weight(process.priority)
        return DEFAULT_WEIGHT

    def is_yielding(self, pid: int) -> bool:
        """Whether ``pid`` is within a yield."""
        return pid in self._yielding

    def weight(self, process: Process) -> int:
        """The cpu weight ``process``'s container gets now."""
        if process.pid in self._yielding:
            return YIELD_WEIGHT
        if process.pid in self.background:
            return BACKGROUND_WEIGHT
        weight = self.base_weight(process)
        if process.pid == self.focused:
            weight *= FOCUS_FACTOR
        if process.pid == self.turn:
            weight *= TURN_FACTOR
        return min(10_000, weight)

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

    def choose_next(self, cpu_usage_us: Mapping[int, int] | None = None) -> Process | None:
        """Whose turn is next, by the policy; among equals, the first pid after the current.

        Candidates are the processes running: not suspended, not in the background.

        Args:
            cpu_usage_us: each process's CPU time so far (``fair`` ranks by it).
        """
        ready = [
            p
            for p in self.running()
            if p.state is ProcessState.RUNNING and p.pid not in self.background
        ]
        if not ready:
            return None
        after = self.turn or 0
        span = max(p.pid for p in ready) + 1

        def in_turn(process: Process) -> int:  # 0 for the first pid after the current one
            return (process.pid - after - 1) % span

        if self.policy is SchedPolicy.PRIORITY:
            return min(ready, key=lambda p: (-priority_to_weight(p.priority), in_turn(p)))
        if self.policy is SchedPolicy.FAIR:
            usage = cpu_usage_us or {}
            return min(ready, key=lambda p: (usage.get(p.pid, 0), in_turn(p)))
        return min(ready, key=in_turn)

    async def pass_turn(self, process: Process | None) -> int | None:
        """Make it ``process``'s turn (None: no one's); the pid whose turn it was."""
        previous, self.turn = self.turn, process.pid if process is not None else None
        for pid in {previous, self.turn}:
            if pid is not None and (holder := self._processes.live_process(pid)) is not None:
                await self.apply(holder)
        return previous

    @contextlib.asynccontextmanager
    async def yielding(self, process: Process) -> AsyncIterator[None]:
        """``process`` weighs the least for the block; as before after it, however it ends."""
        self._yielding[process.pid] = self._yielding.get(process.pid, 0) + 1
        try:
            await self.apply(process)
            yield
        finally:
            left = self._yielding.pop(process.pid) - 1
            if left:
                self._yielding[process.pid] = left
            with trio.CancelScope(shield=True):
                await self.apply(process)

    def on_cpu(self) -> list[int]:
        """Processes with a task on a CPU at this instant (state R in /proc); blocking."""
        return [p.pid for p in self.running() if p.container is not None and _any_running(p)]

    async def changed(self, process: Process) -> None:
        """A container started or changed priority: weigh it (round robin: re-share)."""
        if self.policy is SchedPolicy.ROUND_ROBIN:
            await self.apply_all()
        else:
            await self.apply(process)

    async def ended(self, pid: int) -> None:
        """A process ended: forget it; under round robin the others get its share."""
        self.background.discard(pid)
        self._yielding.pop(pid, None)
        if self.focused == pid:
            self.focused = None
        if self.turn == pid:
            self.turn = None
        if self.policy is SchedPolicy.ROUND_ROBIN:
            await self.apply_all()


def _any_running(process: Process) -> bool:
    """Whether a task of ``process``'s container is running (state R)."""
    assert process.container is not None
    try:
        pids = process.container.cgroup.pids()
    except OSError:  # gone meanwhile
        return False
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                stat = (task / "stat").read_text()
                if stat[stat.rindex(")") + 2] == "R":  # after "pid (comm) "
                    return True
    return False
