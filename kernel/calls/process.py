"""Handlers of ``proc.*`` and ``signal.*``, and who a request may act as."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable

import trio

from kernel.abi import (
    ErrorCode,
    SyscallInvalidArgumentError,
    SyscallNotFoundError,
    SyscallPermissionError,
    SyscallTimeoutError,
)
from kernel.abi.events import EventKind
from kernel.abi.process import (
    PROC_EXEC,
    PROC_INFO,
    PROC_KILL,
    PROC_LIST,
    PROC_OUTPUT,
    PROC_RESUME,
    PROC_SET_PRIORITY,
    PROC_SPAWN,
    PROC_STATE,
    PROC_STATS,
    PROC_SUSPEND,
    PROC_WAIT,
    SIGNAL_SEND,
    ExecItem,
    ExecResult,
    ExitReason,
    LimitsNarrowing,
    OutputItem,
    ProcessInfo,
    ProcExecArgs,
    ProcListResult,
    ProcOutputArgs,
    ProcOutputResult,
    ProcPidArgs,
    ProcSetPriorityArgs,
    ProcSpawnArgs,
    ProcStateResult,
    ProcStatsResult,
    ProcWaitArgs,
    SignalSendArgs,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, Caller, CallTable
from kernel.memory import MemoryBudget
from kernel.policies import PolicyStore
from kernel.proc import KERNEL_PID, Process, ProcessTable
from kernel.supervisor import Supervisor
from sandbox.capabilities import Grant, uncovered
from sandbox.policy import DEFAULT_POLICY, Policy

__all__ = ["ProcessCalls"]

logger = logging.getLogger("agentos.kernel.proc")


def _narrowed(policy: Policy, narrowing: LimitsNarrowing, *, call: str) -> Policy:
    """``policy`` with tighter limits.

    Raises:
        SyscallPermissionError: a limit above the policy's.
    """
    current = policy.limits
    wanted = narrowing.model_dump(exclude_none=True)
    for name, value in wanted.items():
        ceiling = getattr(current, name)
        if ceiling is not None and value > ceiling:
            msg = f"policy {policy.name!r} allows {name} up to {ceiling}, not {value}"
            raise SyscallPermissionError(msg, call=call)
    if "memory" in wanted and current.memory_high is not None:
        wanted["memory_high"] = min(current.memory_high, wanted["memory"])
    limits = current.model_validate({**current.model_dump(), **wanted})
    return policy.model_copy(update={"limits": limits})


class ProcessCalls:
    """Creating, watching, controlling and ending processes."""

    def __init__(
        self,
        processes: ProcessTable,
        supervisor: Supervisor,
        memory: MemoryBudget | None = None,
        policies: PolicyStore | None = None,
    ) -> None:
        self._processes = processes
        self._supervisor = supervisor
        self._memory = memory
        self._policies = policies or PolicyStore()

    def bind(self, table: CallTable) -> None:
        """Implement the ``proc.*`` and ``signal.*`` calls in ``table``."""
        table.bind(PROC_SPAWN, self.spawn)
        table.bind(PROC_LIST, self.list)
        table.bind(PROC_INFO, self.info)
        table.bind(PROC_STATE, self.state)
        table.bind(PROC_STATS, self.stats)
        table.bind(PROC_KILL, self.kill)
        table.bind(PROC_WAIT, self.wait)
        table.bind(PROC_EXEC, self.exec)
        table.bind(PROC_SUSPEND, self.suspend)
        table.bind(PROC_RESUME, self.resume)
        table.bind(PROC_SET_PRIORITY, self.set_priority)
        table.bind(PROC_OUTPUT, self.output)
        table.bind(SIGNAL_SEND, self.signal)

    def act_as(self, caller: Caller, pid: int, call: str) -> Caller:
        """The admin socket acting for process ``pid`` (``as_pid``): with its authority.

        Raises:
            SyscallNotFoundError: ESRCH, no such live process.
        """
        if pid == KERNEL_PID:
            return caller
        process = self._processes.get(pid)
        del call
        return Caller(
            pid=process.pid, uid=caller.uid, os_pid=caller.os_pid,
            capabilities=process.capabilities,
        )  # fmt: skip

    def _owned(self, ctx: CallContext, pid: int, *, live: bool = True) -> Process:
        """The process ``pid``, if the caller may act on it: itself or a descendant.

        ESRCH comes before EPERM, as with kill(2).
        """
        process = self._processes.get(pid) if live else self._processes.find(pid)
        if ctx.caller.capabilities is None or self._processes.is_within(pid, ctx.caller.pid):
            return process
        msg = f"process {pid} is not the caller ({ctx.caller.pid}) or its descendant"
        raise SyscallPermissionError(msg, call=ctx.spec.name)

    async def spawn(self, ctx: CallContext, args: ProcSpawnArgs) -> ProcessInfo:
        """``proc.spawn``: a child of the caller (or of ``parent``) with at most its authority.

        Raises:
            SyscallPermissionError: the caller asked for capabilities it does not hold, or
                more than the policy grants.
            NotFoundError: ENOENT, no such policy.
        """
        policy = None
        if args.policy is not None or args.command is not None:
            policy = self._policies.get(args.policy or DEFAULT_POLICY)  # ENOENT if unknown
        if args.limits is not None:
            if policy is None:
                msg = "limits narrow a policy: name one, or give a command"
                raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
            policy = _narrowed(policy, args.limits, call=ctx.spec.name)
        ppid = args.parent if args.parent is not None else ctx.caller.pid
        parent = self._owned(ctx, ppid) if ppid != KERNEL_PID else None
        if parent is not None and parent.ending is not None:  # its children would outlive it
            msg = f"process {ppid} is ending"
            raise SyscallNotFoundError(msg, code=ErrorCode.ESRCH, call=ctx.spec.name)
        app_id = self._app_of_child(ctx, parent, args.app_id)
        wanted = self._grants_of_child(ctx, policy, args.capabilities, app_id)
        if args.command is not None and policy is not None and self._memory is not None:
            self._memory.check(policy.limits.memory)  # ENOMEM past the containers' budget
        if app_id is not None:  # its files are there, within its quota, before it runs
            await self._supervisor.open_app_root(app_id, policy)
        process = self._processes.spawn(
            name=args.name, ppid=ppid, app_id=app_id, capabilities=wanted, policy=policy,
            detached=args.detached, env=dict(args.command.env) if args.command else None,
        )  # fmt: skip
        self._supervisor.publish(EventKind.PROCESS_SPAWNED, pid=process.pid, name=process.name)
        if args.command is not None:
            assert policy is not None
            await self._supervisor.launch(process, args.command, policy)
        logger.info("spawned pid %d %r (parent %d)", process.pid, process.name, ppid)
        return process.info()

    def _app_of_child(
        self, ctx: CallContext, parent: Process | None, asked: str | None
    ) -> str | None:
        """A child belongs to its parent's app; only the admin may place it in another.

        Raises:
            SyscallPermissionError: a process asked for a child in another app.
        """
        inherited = parent.app_id if parent is not None else None
        if asked is None:
            return inherited
        if ctx.caller.capabilities is not None and asked != inherited:
            msg = f"a child of app {inherited!r} cannot belong to app {asked!r}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        return asked

    def _grants_of_child(
        self,
        ctx: CallContext,
        policy: Policy | None,
        asked: list[Grant] | None,
        app_id: str | None,
    ) -> frozenset[Grant]:
        """What a child may do, within both its policy's grants and the caller's.

        That is what was asked (its policy's grants by default), with ``{app}`` filled in.

        Raises:
            SyscallPermissionError: a grant beyond the policy or the caller.
        """
        allowed = _for_app(policy.capabilities if policy is not None else (), app_id)
        wanted = _for_app(asked, app_id) if asked is not None else allowed
        if policy is not None and (beyond := uncovered(wanted, allowed)):
            names = ", ".join(map(str, beyond))
            msg = f"policy {policy.name!r} does not grant: {names}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        held = ctx.caller.capabilities
        if held is not None and (missing := uncovered(wanted, held)):
            names = ", ".join(map(str, missing))
            msg = f"cannot grant capabilities the caller lacks: {names}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        return wanted

    async def list(self, _ctx: CallContext, _args: NoArgs) -> ProcListResult:
        """``proc.list``."""
        return ProcListResult(processes=[p.info() for p in self._processes.live()])

    async def info(self, _ctx: CallContext, args: ProcPidArgs) -> ProcessInfo:
        """``proc.info``: live or recently exited."""
        return self._processes.find(args.pid).info()

    async def state(self, _ctx: CallContext, args: ProcPidArgs) -> ProcStateResult:
        """``proc.state``."""
        process = self._processes.find(args.pid)
        return ProcStateResult(
            pid=process.pid, state=process.state, exit_reason=process.exit_reason
        )

    async def stats(self, ctx: CallContext, args: ProcPidArgs) -> ProcStatsResult:
        """``proc.stats``: its container's counters; zeros for a process without one."""
        process = self._owned(ctx, args.pid)
        stats = await self._supervisor.stats(process)
        limits = process.policy.limits if process.policy is not None else None
        return ProcStatsResult(
            pid=process.pid,
            memory_current_bytes=stats.memory_current if stats else 0,
            memory_peak_bytes=stats.memory_peak if stats else None,
            memory_limit_bytes=limits.memory if limits and stats else None,
            cpu_usage_us=stats.cpu_usage_us if stats else 0,
            cpu_throttled_periods=stats.cpu_throttled_periods if stats else 0,
            pids_current=stats.pids_current if stats else 0,
            pids_limit=limits.pids if limits and stats else None,
            oom_kills=stats.oom_kills if stats else 0,
        )

    async def kill(self, ctx: CallContext, args: ProcPidArgs) -> ProcessInfo:
        """``proc.kill``: it and its children that are not detached; its final state."""
        process = self._owned(ctx, args.pid)
        await self._supervisor.end(process, ExitReason.KILLED)
        return process.info()

    async def wait(self, ctx: CallContext, args: ProcWaitArgs) -> ProcessInfo:
        """``proc.wait``: return once it has exited.

        Raises:
            SyscallTimeoutError: ETIMEDOUT, still running after ``timeout`` seconds.
        """
        process = self._owned(ctx, args.pid, live=False)
        with trio.move_on_after(args.timeout if args.timeout is not None else float("inf")):
            await process.ended.wait()
        if not process.ended.is_set():
            msg = f"process {args.pid} still runs after {args.timeout} s"
            raise SyscallTimeoutError(msg, call=ctx.spec.name)
        return process.info()

    async def exec(self, ctx: CallContext, args: ProcExecArgs) -> ExecResult:
        """``proc.exec``: stream a command's output from inside the process's container."""
        process = self._owned(ctx, args.pid)

        async def emit(item: ExecItem) -> None:
            await ctx.emit(item)

        return await self._supervisor.exec(
            process, args.command, stdin=args.stdin, time_limit=args.timeout, emit=emit
        )

    async def output(self, ctx: CallContext, args: ProcOutputArgs) -> ProcOutputResult:
        """``proc.output``: its command's kept output after ``after``, then more if asked.

        With ``follow`` it streams until the output ends (every process of its container
        has exited) or the caller cancels.
        """
        process = self._owned(ctx, args.pid, live=False)
        log = process.output
        if log is None:
            msg = f"process {process.pid} has no command, hence no output"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        seen = args.after
        while True:
            for chunk in log.after(seen):
                await ctx.emit(OutputItem(seq=chunk.seq, stream=chunk.stream, data=chunk.data))
                seen = chunk.seq
            if not args.follow or log.ended:
                break
            await log.wait_after(seen)
        return ProcOutputResult(
            last_seq=log.last_seq, evicted_bytes=log.evicted_bytes, ended=log.ended
        )

    async def suspend(self, ctx: CallContext, args: ProcPidArgs) -> ProcessInfo:
        """``proc.suspend``: freeze its container."""
        process = self._owned(ctx, args.pid)
        _not_self(ctx, process, "suspend")
        await self._supervisor.suspend(process)
        return process.info()

    async def resume(self, ctx: CallContext, args: ProcPidArgs) -> ProcessInfo:
        """``proc.resume``: thaw it."""
        process = self._owned(ctx, args.pid)
        await self._supervisor.resume(process)
        return process.info()

    async def set_priority(self, ctx: CallContext, args: ProcSetPriorityArgs) -> ProcessInfo:
        """``proc.set_priority``."""
        process = self._owned(ctx, args.pid)
        await self._supervisor.set_priority(process, args.priority)
        return process.info()

    async def signal(self, ctx: CallContext, args: SignalSendArgs) -> ProcessInfo:
        """``signal.send``: to the process's command (SIGSTOP, SIGCONT, SIGKILL: to all of it)."""
        process = self._owned(ctx, args.pid)
        if args.number == signal.SIGSTOP:
            _not_self(ctx, process, "stop")
        await self._supervisor.signal(process, args.number)
        return process.info()


def _for_app(grants: Iterable[Grant], app_id: str | None) -> frozenset[Grant]:
    """``grants`` with ``{app}`` filled in; those that need an app dropped when there is none."""
    return frozenset(g for grant in grants if (g := grant.for_app(app_id)) is not None)


def _not_self(ctx: CallContext, process: Process, what: str) -> None:
    """Refuse to freeze the caller itself: nothing inside could thaw it.

    Raises:
        SyscallInvalidArgumentError: EINVAL, the caller named itself.
    """
    if ctx.caller.pid == process.pid:
        msg = f"a process cannot {what} itself (nothing could resume it from inside)"
        raise SyscallInvalidArgumentError(msg, call=ctx.spec.name, code=ErrorCode.EINVAL)
