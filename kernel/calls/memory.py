"""Handlers of ``mem.*``."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable

import trio

from kernel.abi import SyscallPermissionError
from kernel.abi.memory import (
    MEM_GC,
    MEM_PROCESS_STATS,
    MEM_STATS,
    MemGcResult,
    MemProcessStatsResult,
    MemStatsResult,
)
from kernel.abi.process import ProcPidArgs
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.memory import MemoryBudget, host_memory, kernel_rss, memory_psi, pressure_level
from kernel.proc import ProcessTable
from kernel.supervisor import Supervisor

__all__ = ["MemoryCalls"]

Holders = Callable[[], Iterable[int]]
"""The pids a subsystem holds resources for."""


class MemoryCalls:
    """Memory figures, and reclaiming what dead processes left.

    Args:
        processes: the table.
        supervisor: reads containers' cgroups.
        budget: the containers' memory budget.
        holders: for each subsystem holding resources per process, the pids it holds
            them for and how to release one (``mem.gc`` sweeps pids no longer live).
    """

    def __init__(
        self,
        processes: ProcessTable,
        supervisor: Supervisor,
        budget: MemoryBudget,
        holders: Iterable[tuple[Holders, Callable[[int], object]]] = (),
    ) -> None:
        self._processes = processes
        self._supervisor = supervisor
        self._budget = budget
        self._holders = list(holders)

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(MEM_STATS, self.stats)
        table.bind(MEM_PROCESS_STATS, self.process_stats)
        table.bind(MEM_GC, self.gc)

    async def stats(self, _ctx: CallContext, _args: NoArgs) -> MemStatsResult:
        """``mem.stats``."""
        total, available = host_memory()
        some, full = memory_psi()
        return MemStatsResult(
            total_bytes=total, available_bytes=available, budget_bytes=self._budget.budget,
            committed_bytes=self._budget.committed(), kernel_rss_bytes=kernel_rss(),
            psi_some_avg10=some, pressure=pressure_level(total, available, some, full),
        )  # fmt: skip

    async def process_stats(self, ctx: CallContext, args: ProcPidArgs) -> MemProcessStatsResult:
        """``mem.process_stats``: its own or a descendant's."""
        process = self._processes.get(args.pid)
        if ctx.caller.capabilities is not None and not self._processes.is_within(
            process.pid, ctx.caller.pid
        ):
            msg = f"process {process.pid} is not the caller ({ctx.caller.pid}) or its descendant"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        stats = await self._supervisor.stats(process)
        limit = process.policy.limits.memory if process.policy is not None and stats else None
        return MemProcessStatsResult(
            pid=process.pid, current_bytes=stats.memory_current if stats else 0,
            peak_bytes=stats.memory_peak if stats else None, limit_bytes=limit,
            oom_kills=stats.oom_kills if stats else 0,
        )  # fmt: skip

    async def gc(self, _ctx: CallContext, _args: NoArgs) -> MemGcResult:
        """``mem.gc``: forget exited processes, free what dead ones still hold, collect."""
        forgotten = self._processes.forget_exited()
        live = {process.pid for process in self._processes.live()}
        swept: set[int] = set()
        for held, release in self._holders:
            for pid in set(held()) - live:
                release(pid)
                swept.add(pid)
        collected = await trio.to_thread.run_sync(gc.collect)
        return MemGcResult(
            exited_forgotten=forgotten, holders_swept=len(swept), objects_collected=collected
        )
