"""Handlers of ``sys.env_*`` and ``time.*`` (``sys.cwd_*`` are the file calls' own)."""

from __future__ import annotations

import datetime as dt
import time

import trio

from kernel.abi import SyscallExhaustedError, SyscallInvalidArgumentError
from kernel.abi.environ import (
    MAX_ENV_VARS,
    SYS_ENV_GET,
    SYS_ENV_SET,
    TIME_NOW,
    TIME_SLEEP,
    TIME_UPTIME,
    EnvGetArgs,
    EnvResult,
    EnvSetArgs,
    TimeNowResult,
    TimeSleepArgs,
    TimeSleepResult,
    TimeUptimeResult,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.proc import KERNEL_PID, Process, ProcessTable

__all__ = ["EnvironCalls"]


class EnvironCalls:
    """Each process's own environment, and the kernel's clock (working directories: files)."""

    def __init__(self, processes: ProcessTable) -> None:
        self._processes = processes
        self._started = time.monotonic()

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(SYS_ENV_GET, self.env_get)
        table.bind(SYS_ENV_SET, self.env_set)
        table.bind(TIME_NOW, self.now)
        table.bind(TIME_SLEEP, self.sleep)
        table.bind(TIME_UPTIME, self.uptime)

    def _process(self, ctx: CallContext) -> Process:
        """The caller's process; the kernel itself keeps no environment to hand out."""
        if ctx.caller.pid == KERNEL_PID:
            msg = "the kernel's own environment is not given out: name a process with as_pid"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        return self._processes.get(ctx.caller.pid)

    async def env_get(self, ctx: CallContext, args: EnvGetArgs) -> EnvResult:
        """``sys.env_get``."""
        env = self._process(ctx).env
        if args.name is None:
            return EnvResult(env=dict(env))
        return EnvResult(env={args.name: env[args.name]} if args.name in env else {})

    async def env_set(self, ctx: CallContext, args: EnvSetArgs) -> EnvResult:
        """``sys.env_set``: set, or remove with a None value; returns the whole environment.

        Raises:
            SyscallExhaustedError: a new variable past the limit of 256.
        """
        env = self._process(ctx).env
        if args.value is None:
            env.pop(args.name, None)
        else:
            if args.name not in env and len(env) >= MAX_ENV_VARS:
                msg = f"a process holds at most {MAX_ENV_VARS} environment variables"
                raise SyscallExhaustedError(msg, call=ctx.spec.name)
            env[args.name] = args.value
        return EnvResult(env=dict(env))

    async def now(self, _ctx: CallContext, _args: NoArgs) -> TimeNowResult:
        """``time.now``."""
        unix = time.time()
        iso = dt.datetime.fromtimestamp(unix, tz=dt.UTC).isoformat()
        return TimeNowResult(unix=unix, monotonic=time.monotonic(), iso=iso)

    async def sleep(self, _ctx: CallContext, args: TimeSleepArgs) -> TimeSleepResult:
        """``time.sleep``: a trio sleep, so nothing else waits."""
        start = trio.current_time()
        await trio.sleep(args.seconds)
        return TimeSleepResult(slept=trio.current_time() - start)

    async def uptime(self, ctx: CallContext, _args: NoArgs) -> TimeUptimeResult:
        """``time.uptime``."""
        age = None
        if ctx.caller.pid != KERNEL_PID:
            age = max(0.0, time.time() - self._processes.get(ctx.caller.pid).created_at)
        return TimeUptimeResult(
            kernel_seconds=time.monotonic() - self._started, process_seconds=age
        )
