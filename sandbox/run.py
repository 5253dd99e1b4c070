"""One command in a fresh sandbox, start to finish: the engine of ``agentos sandbox run``.

Output streams to the caller as it comes, up to the policy's output cap (stdout and
stderr together); past the cap it is read and dropped, so the command never blocks on a
full pipe, and the result says it was cut. Nothing is buffered without bound.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from sandbox.oci.spec import ProcessSpec
from sandbox.policy import Policy
from sandbox.pool import WarmPool, prepare
from sandbox.runtime import Container, ExitStatus, Outcome, Runtime

__all__ = ["RunResult", "Sink", "run_in_sandbox"]

Sink = Callable[[bytes], Awaitable[None]]
"""Where a stream of output goes, chunk by chunk."""

_SAMPLE_SECONDS = 0.02
_DRAIN_SECONDS = 2.0
_KILLED_CODE = 137


@dataclass(frozen=True)
class RunResult:
    """How a sandboxed run went.

    Attributes:
        sandbox_id: the sandbox's id (gone by now).
        exit_code: as a shell reports it: the command's code, 128 + signal, 137 on a kill.
        status: exited, oom, timeout or killed.
        wall_ms: from start to end of the command.
        memory_peak_bytes: most memory in use at once.
        pids_peak: most tasks at once (sampled where the kernel keeps no peak).
        pids_limit_hit: forks were refused at the policy's pids limit.
        oom_kills: processes the kernel killed at the memory limit.
        output_bytes: output produced, stdout and stderr together.
        output_truncated: output passed the cap and was cut there.
    """

    sandbox_id: str
    exit_code: int
    status: Outcome
    wall_ms: float
    memory_peak_bytes: int | None
    pids_peak: int | None
    pids_limit_hit: bool
    oom_kills: int
    output_bytes: int
    output_truncated: bool

    def to_json(self) -> dict[str, Any]:
        """The result object ``agentos sandbox run --json`` prints."""
        document = asdict(self)
        document["status"] = self.status.value
        document["wall_ms"] = round(self.wall_ms, 3)
        return document


class _Budget:
    """How much more output may pass, shared by stdout and stderr."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.total = 0
        self.truncated = False

    def take(self, size: int) -> int:
        self.total += size
        allowed = min(size, self.remaining)
        self.remaining -= allowed
        if allowed < size:
            self.truncated = True
        return allowed


class _Peaks:
    """Highest memory and task counts seen while the command runs."""

    def __init__(self) -> None:
        self.memory = 0
        self.pids = 0

    async def sample(self, container: Container) -> None:
        while True:
            with contextlib.suppress(OSError):
                stats = await container.stats()
                self.memory = max(self.memory, stats.memory_current)
                self.pids = max(self.pids, stats.pids_current)
            await trio.sleep(_SAMPLE_SECONDS)


async def _pump(fd: int, sink: Sink, budget: _Budget) -> None:
    async with trio.lowlevel.FdStream(fd) as stream:
        while chunk := await stream.receive_some(65536):
            allowed = budget.take(len(chunk))
            if allowed:
                await sink(chunk[:allowed])


def _outcome(status: ExitStatus, *, timed_out: bool, oom_kills: int) -> tuple[Outcome, int]:
    if timed_out:
        return Outcome.TIMEOUT, _KILLED_CODE
    if oom_kills and status.signal is not None:
        return Outcome.OOM, _KILLED_CODE
    if status.signal is not None:
        return Outcome.KILLED, status.shell_code
    return Outcome.EXITED, status.shell_code


async def run_in_sandbox(  # noqa: PLR0913 - each keyword is an option of one run
    runtime: Runtime,
    process: ProcessSpec,
    policy: Policy,
    *,
    stdout: Sink,
    stderr: Sink,
    stdin: int | None = None,
    time_limit: float | None = None,
    data: Path | None = None,
    pool: WarmPool | None = None,
) -> RunResult:
    """Run ``process`` in a new sandbox under ``policy``; always delete the sandbox.

    Args:
        runtime: makes the container.
        process: the command.
        policy: limits, network, mounts.
        stdout: receives the command's standard output.
        stderr: receives its standard error.
        stdin: a file descriptor for its standard input (None: /dev/null).
        time_limit: wall-clock limit in seconds, then the sandbox is killed; the
            policy's ``timeout`` when None.
        data: a host directory to show at /data instead of a fresh one.
        pool: take a ready sandbox from here when it fits (same runtime and policy, no
            stdin, no data directory of the caller's).
    """
    limit = time_limit if time_limit is not None else policy.limits.timeout
    budget = _Budget(policy.limits.output)
    peaks = _Peaks()
    fits_pool = (
        pool is not None and pool.runtime is runtime and pool.policy == policy
        and stdin is None and data is None
    )  # fmt: skip
    if fits_pool:
        assert pool is not None
        prepared = await pool.take(process)
    else:
        prepared = await prepare(runtime, process, policy, stdin=stdin, data=data)
    container = prepared.container
    timed_out = False
    try:
        async with trio.open_nursery() as outer:
            async with trio.open_nursery() as streams:
                streams.start_soon(_pump, prepared.stdout, stdout, budget)
                streams.start_soon(_pump, prepared.stderr, stderr, budget)
                prepared.stdout = prepared.stderr = -1  # the pumps own them now
                started = time.monotonic()
                await container.start()
                outer.start_soon(peaks.sample, container)  # the command's, not runc's setup
                with trio.move_on_after(limit if limit is not None else float("inf")) as clock:
                    status = await container.wait()
                if clock.cancelled_caught:
                    timed_out = True
                    await container.kill()
                    status = await container.wait()
                wall_ms = (time.monotonic() - started) * 1000
                # Init is gone, so its pid namespace is too: the pipes close. Don't wait
                # forever on a writer that somehow outlived it.
                streams.cancel_scope.deadline = trio.current_time() + _DRAIN_SECONDS
            outer.cancel_scope.cancel()
        stats = await container.stats()
    finally:
        await prepared.discard()
    outcome, exit_code = _outcome(status, timed_out=timed_out, oom_kills=stats.oom_kills)
    return RunResult(
        sandbox_id=container.id,
        exit_code=exit_code,
        status=outcome,
        wall_ms=wall_ms,
        memory_peak_bytes=max(stats.memory_peak or 0, peaks.memory) or None,
        pids_peak=max(stats.pids_peak or 0, peaks.pids) or None,
        pids_limit_hit=stats.pids_limit_hits > 0,
        oom_kills=stats.oom_kills,
        output_bytes=budget.total,
        output_truncated=budget.truncated,
    )
