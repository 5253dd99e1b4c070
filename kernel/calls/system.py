"""Handlers of ``sys.*``."""

from __future__ import annotations

import os
import platform
import socket
import time

from kernel.abi import Catalog, SyscallInvalidArgumentError
from kernel.abi.events import (
    SYS_EVENTS,
    SYS_METRICS,
    SysEventsArgs,
    SysEventsResult,
    SysMetricsResult,
)
from kernel.abi.system import (
    SYS_CALLS,
    SYS_CANCEL,
    SYS_INFO,
    SYS_PING,
    CallInfo,
    NoArgs,
    SysCallsArgs,
    SysCallsResult,
    SysCancelArgs,
    SysCancelResult,
    SysInfoResult,
    SysPingArgs,
    SysPingResult,
)
from kernel.calls._table import CallContext, CallTable
from kernel.events import EventBus
from kernel.metrics import KernelMetrics
from kernel.proc import ProcessTable

__all__ = ["SystemCalls"]


def _describe(catalog: Catalog) -> list[CallInfo]:
    return [
        CallInfo(
            name=spec.name,
            category=spec.category,
            summary=spec.summary,
            capability=spec.capability,
            streaming=spec.streaming,
            args_schema=spec.args.model_json_schema(),
            result_schema=spec.result.model_json_schema(),
            item_schema=spec.item.model_json_schema() if spec.item else None,
        )
        for spec in catalog
    ]


def _memory_total_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class SystemCalls:
    """The kernel describing itself: identity, host, catalog, liveness, events, metrics."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        processes: ProcessTable,
        version: str,
        events: EventBus,
        metrics: KernelMetrics,
    ) -> None:
        self._catalog = catalog
        self._descriptions = _describe(catalog)
        self._processes = processes
        self._events = events
        self._metrics = metrics
        self._version = version
        self._started_at = time.time()
        self._started_monotonic = time.monotonic()

    def bind(self, table: CallTable) -> None:
        """Implement the ``sys.*`` calls in ``table``."""
        table.bind(SYS_PING, self.ping)
        table.bind(SYS_INFO, self.info)
        table.bind(SYS_CALLS, self.calls)
        table.bind(SYS_CANCEL, self.cancel)
        table.bind(SYS_EVENTS, self.events)
        table.bind(SYS_METRICS, self.metrics)

    async def ping(self, _ctx: CallContext, args: SysPingArgs) -> SysPingResult:
        """``sys.ping``."""
        return SysPingResult(data=args.data, kernel_time=time.time())

    async def info(self, _ctx: CallContext, _args: NoArgs) -> SysInfoResult:
        """``sys.info``."""
        uname = os.uname()
        return SysInfoResult(
            name="AgentOS",
            version=self._version,
            pid=os.getpid(),
            uid=os.geteuid(),
            hostname=socket.gethostname(),
            os=uname.sysname,
            kernel_release=uname.release,
            arch=uname.machine,
            python=platform.python_version(),
            cpu_count=os.cpu_count() or 1,
            memory_total_bytes=_memory_total_bytes(),
            started_at=self._started_at,
            uptime_seconds=time.monotonic() - self._started_monotonic,
            processes=len(self._processes),
            calls=len(self._catalog),
        )

    async def calls(self, _ctx: CallContext, args: SysCallsArgs) -> SysCallsResult:
        """``sys.calls``."""
        calls = [c for c in self._descriptions if args.category in (None, c.category)]
        return SysCallsResult(calls=calls)

    async def cancel(self, ctx: CallContext, args: SysCancelArgs) -> SysCancelResult:
        """``sys.cancel``: another request of the caller's own connection.

        Raises:
            SyscallInvalidArgumentError: EINVAL, the call did not come over a connection.
        """
        if ctx.cancel_request is None:
            msg = "sys.cancel cancels requests of its own connection: there is none"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        return SysCancelResult(cancelled=ctx.cancel_request(args.id))

    async def events(self, ctx: CallContext, args: SysEventsArgs) -> SysEventsResult:
        """``sys.events``: stream events until the caller goes away."""
        kinds = None if args.kinds is None else frozenset(args.kinds)
        async with self._events.subscribe(kinds) as subscription:
            async for event in subscription:
                await ctx.emit(event)
        return SysEventsResult()

    async def metrics(self, _ctx: CallContext, _args: NoArgs) -> SysMetricsResult:
        """``sys.metrics``."""
        text = self._metrics.render().decode()
        return SysMetricsResult(text=text, content_type=self._metrics.content_type)
