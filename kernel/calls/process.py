"""Handlers of ``proc.*``."""

from __future__ import annotations

import logging

from kernel.abi import SyscallPermissionError
from kernel.abi.process import (
    PROC_INFO,
    PROC_KILL,
    PROC_LIST,
    PROC_SPAWN,
    ProcessInfo,
    ProcListResult,
    ProcPidArgs,
    ProcSpawnArgs,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.proc import ProcessTable

__all__ = ["ProcessCalls"]

logger = logging.getLogger("agentos.kernel.proc")


class ProcessCalls:
    """Creating, listing and ending processes."""

    def __init__(self, processes: ProcessTable) -> None:
        self._processes = processes

    def bind(self, table: CallTable) -> None:
        """Implement the ``proc.*`` calls in ``table``."""
        table.bind(PROC_SPAWN, self.spawn)
        table.bind(PROC_LIST, self.list)
        table.bind(PROC_INFO, self.info)
        table.bind(PROC_KILL, self.kill)

    def _check_owns(self, ctx: CallContext, pid: int) -> None:
        """A process may act on itself and its descendants; the admin on anything."""
        if ctx.caller.capabilities is None or self._processes.is_within(pid, ctx.caller.pid):
            return
        msg = f"process {pid} is not the caller ({ctx.caller.pid}) or its descendant"
        raise SyscallPermissionError(msg, call=ctx.spec.name)

    async def spawn(self, ctx: CallContext, args: ProcSpawnArgs) -> ProcessInfo:
        """``proc.spawn``: a child of the caller (or of ``parent``) with at most its authority.

        Raises:
            SyscallPermissionError: the caller asked for capabilities it does not hold.
        """
        wanted = frozenset(args.capabilities)
        held = ctx.caller.capabilities
        if held is not None and not wanted <= held:
            missing = ", ".join(sorted(wanted - held))
            msg = f"cannot grant capabilities the caller lacks: {missing}"
            raise SyscallPermissionError(msg, call=ctx.spec.name)
        ppid = args.parent if args.parent is not None else ctx.caller.pid
        self._check_owns(ctx, ppid)
        process = self._processes.spawn(
            name=args.name, ppid=ppid, app_id=args.app_id, capabilities=wanted
        )
        logger.info("spawned pid %d %r (parent %d)", process.pid, process.name, ppid)
        return process.info()

    async def list(self, _ctx: CallContext, _args: NoArgs) -> ProcListResult:
        """``proc.list``."""
        return ProcListResult(processes=[p.info() for p in self._processes.live()])

    async def info(self, _ctx: CallContext, args: ProcPidArgs) -> ProcessInfo:
        """``proc.info``."""
        return self._processes.get(args.pid).info()

    async def kill(self, ctx: CallContext, args: ProcPidArgs) -> ProcessInfo:
        """``proc.kill``."""
        self._processes.get(args.pid)  # ESRCH before EPERM, as kill(2) does
        self._check_owns(ctx, args.pid)
        ended = self._processes.kill(args.pid)
        logger.info("killed pid %d and %d descendant(s)", args.pid, len(ended) - 1)
        return ended[-1].info()
