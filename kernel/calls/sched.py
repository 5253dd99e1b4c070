"""Handlers of ``sched.*``."""

from __future__ import annotations

import trio

from kernel.abi import SyscallInvalidArgumentError
from kernel.abi.process import ProcessState
from kernel.abi.sched import (
    SCHED_BACKGROUND,
    SCHED_CURRENT,
    SCHED_FOCUS,
    SCHED_GET_POLICY,
    SCHED_NEXT,
    SCHED_SET_POLICY,
    SCHED_STATS,
    SCHED_YIELD,
    SchedBackgroundArgs,
    SchedCurrentResult,
    SchedEntry,
    SchedFocusArgs,
    SchedNextResult,
    SchedPolicy,
    SchedPolicyArgs,
    SchedPolicyResult,
    SchedStatsResult,
    SchedYieldArgs,
    SchedYieldResult,
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
        table.bind(SCHED_NEXT, self.next)
        table.bind(SCHED_CURRENT, self.current)
        table.bind(SCHED_YIELD, self.yield_)

    def _state(self) -> SchedPolicyResult:
        scheduler = self._scheduler
        return SchedPolicyResult(
            policy=scheduler.policy, focused_pid=scheduler.focused,
            background_pids=sorted(scheduler.background), turn_pid=scheduler.turn,
        )  # fmt: skip

    async def get_policy(self, _ctx: CallContext, _args: NoArgs) -> SchedPolicyResult:
        """``sched.get_policy``."""
        return self._state()

    async def set_policy(self, ctx: CallContext, args: SchedPolicyArgs) -> SchedPolicyResult:
        """``sched.set_policy``: every running container is re-weighed."""
        ctx.require_admin()
        self._scheduler.policy = args.policy
        await self._scheduler.apply_all()
        return self._state()

    async def focus(self, ctx: CallContext, args: SchedFocusArgs) -> SchedPolicyResult:
        """``sched.focus``: boost one process (the one before is weighed as others)."""
        ctx.require_admin()
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
        ctx.require_admin()
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
                    turn=process.pid == scheduler.turn,
                    yielding=scheduler.is_yielding(process.pid),
                    cpu_usage_us=usage,
                    throttled_periods=throttled,
                )
            )
        return SchedStatsResult(policy=scheduler.policy, cpus=scheduler.cpus, processes=entries)

    def _visible(self, ctx: CallContext, pid: int) -> bool:
        """Whether the caller may see ``pid``: its own, a descendant, or any (the admin)."""
        return ctx.caller.capabilities is None or self._processes.is_within(pid, ctx.caller.pid)

    async def next(self, ctx: CallContext, _args: NoArgs) -> SchedNextResult:
        """``sched.next``: the turn passes to the next process in the policy's order."""
        ctx.require_admin()
        scheduler = self._scheduler
        usage: dict[int, int] = {}
        if scheduler.policy is SchedPolicy.FAIR:
            for process in scheduler.running():
                try:
                    stats = await self._supervisor.stats(process)
                except Exception:  # noqa: BLE001, S112 - it ended meanwhile: not a candidate
                    continue
                if stats is not None:
                    usage[process.pid] = stats.cpu_usage_us
        chosen = scheduler.choose_next(usage)
        previous = await scheduler.pass_turn(chosen)
        return SchedNextResult(
            pid=chosen.pid if chosen else None, previous_pid=previous, policy=scheduler.policy
        )

    async def current(self, ctx: CallContext, _args: NoArgs) -> SchedCurrentResult:
        """``sched.current``: whose turn it is and who is on a CPU (of those it may see)."""
        on_cpu = await trio.to_thread.run_sync(self._scheduler.on_cpu)
        turn = self._scheduler.turn
        return SchedCurrentResult(
            turn_pid=turn if turn is not None and self._visible(ctx, turn) else None,
            on_cpu=[pid for pid in on_cpu if self._visible(ctx, pid)],
        )

    async def yield_(self, ctx: CallContext, args: SchedYieldArgs) -> SchedYieldResult:
        """``sched.yield``: the caller weighs the least for ``seconds``, then as before.

        Raises:
            SyscallInvalidArgumentError: the caller is the kernel, or has no container.
        """
        process = self._processes.live_process(ctx.caller.pid)
        if process is None or process.container is None:
            msg = "only a process running in a container can yield (act as one with as_pid)"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        if process.state is not ProcessState.RUNNING:
            msg = f"process {process.pid} is {process.state.value}, not running"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        start = trio.current_time()
        async with self._scheduler.yielding(process):
            await trio.sleep(args.seconds)
        return SchedYieldResult(
            pid=process.pid,
            yielded_seconds=trio.current_time() - start,
            weight=self._scheduler.weight(process),
        )
