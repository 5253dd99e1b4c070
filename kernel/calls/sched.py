"""Handlers of ``sched.*``."""

from __future__ import annotations

from kernel.abi import SyscallPermissionError
from kernel.abi.sched import (
    SCHED_BACKGROUND,
    SCHED_FOCUS,
    SCHED_GET_POLICY,
    SCHED_SET_POLICY,
    SCHED_STATS,
    SchedBackgroundArgs,
    SchedEntry,
    SchedFocusArgs,
    SchedPolicyArgs,
    SchedPolicyResult,
    SchedStatsResult,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.proc import ProcessTable
from kernel.sched import Scheduler
from kernel.supervisor import Supervisor

__all__ = ["SchedCalls"]


class SchedCalls:
    """The scheduling policy: read by processes, set by the kernel's administrators."""

    def __init__(
        self, scheduler: Scheduler, processes: ProcessTable, supervisor: Supervisor
    ) -> None:
        self._scheduler = scheduler
        self._processes = processes
        self._supervisor = supervisor

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(SCHED_GET_POLICY, self.get_policy)
        table.bind(SCHED_SET_POLICY, self.set_policy)
        table.bind(SCHED_FOCUS, self.focus)
        table.bind(SCHED_BACKGROUND, self.background)
        table.bind(SCHED_STATS, self.stats)

    def _state(self) -> SchedPolicyResult:
        scheduler = self._scheduler
        return SchedPolicyResult(
            policy=scheduler.policy, focused_pid=scheduler.focused,
            background_pids=sorted(scheduler.background),
        )  # fmt: skip

    @staticmethod
    def _admin(ctx: CallContext) -> None:
        if ctx.caller.capabilities is not None:
            msg = f"{ctx.spec.name} is for the kernel's administrators (the orchestrator)"
            raise SyscallPermissionError(msg, call=ctx.spec.name)

    async def get_policy(self, _ctx: CallContext, _args: NoArgs) -> SchedPolicyResult:
        """``sched.get_policy``."""
        return self._state()

    async def set_policy(self, ctx: CallContext, args: SchedPolicyArgs) -> SchedPolicyResult:
        """``sched.set_policy``: every running container is re-weighed."""
        self._admin(ctx)
        self._scheduler.policy = args.policy
        await self._scheduler.apply_all()
        return self._state()

    async def focus(self, ctx: CallContext, args: SchedFocusArgs) -> SchedPolicyResult:
        """``sched.focus``: boost one process (the one before is weighed as others)."""
        self._admin(ctx)
        before = self._scheduler.focused
        if args.pid is not None:
            self._processes.get(args.pid)  # ESRCH if it is not live
        self._scheduler.focused = args.pid
        for pid in (before, args.pid):
            if pid is not None and (process := self._processes.live_process(pid)) is not None:
                await self._scheduler.apply(process)
        return self._state()

    async def background(self, ctx: CallContext, args: SchedBackgroundArgs) -> SchedPolicyResult:
        """``sched.background``: throttle a process, or let it run again."""
        self._admin(ctx)
        process = self._processes.get(args.pid)
        if args.background:
            self._scheduler.background.add(process.pid)
        else:
            self._scheduler.background.discard(process.pid)
        await self._scheduler.apply(process)
        return self._state()

    async def stats(self, ctx: CallContext, _args: NoArgs) -> SchedStatsResult:
        """``sched.stats``: the caller's own and descendants' containers (the admin: all)."""
        scheduler = self._scheduler
        entries = []
        for process in scheduler.running():
            if ctx.caller.capabilities is not None and not self._processes.is_within(
                process.pid, ctx.caller.pid
            ):
                continue
            usage = throttled = 0
            try:
                stats = await self._supervisor.stats(process)
            except Exception:  # noqa: BLE001 - it ended meanwhile
                stats = None
            if stats is not None:
                usage, throttled = stats.cpu_usage_us, stats.cpu_throttled_periods
            entries.append(
                SchedEntry(
                    pid=process.pid,
                    priority=process.priority,
                    weight=scheduler.weight(process),
                    cpu_max=scheduler.cpu_max(process),
                    focused=process.pid == scheduler.focused,
                    background=process.pid in scheduler.background,
                    cpu_usage_us=usage,
                    throttled_periods=throttled,
                )
            )
        return SchedStatsResult(policy=scheduler.policy, cpus=scheduler.cpus, processes=entries)
