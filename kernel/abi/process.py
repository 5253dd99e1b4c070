"""``proc.*`` and ``signal.*``: the process table and the containers behind it."""

from __future__ import annotations

import enum
import re
import signal

from pydantic import Field, field_validator

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import APP, Capability, Grant

__all__ = [
    "PROC_EXEC",
    "PROC_INFO",
    "PROC_KILL",
    "PROC_LIST",
    "PROC_OUTPUT",
    "PROC_RESUME",
    "PROC_SET_PRIORITY",
    "PROC_SPAWN",
    "PROC_STATE",
    "PROC_STATS",
    "PROC_SUSPEND",
    "PROC_WAIT",
    "SIGNAL_SEND",
    "Command",
    "ContainerInfo",
    "ExecItem",
    "ExecResult",
    "ExitReason",
    "LimitsNarrowing",
    "OutputItem",
    "OutputStream",
    "ProcExecArgs",
    "ProcListResult",
    "ProcOutputArgs",
    "ProcOutputResult",
    "ProcPidArgs",
    "ProcSetPriorityArgs",
    "ProcSpawnArgs",
    "ProcStateResult",
    "ProcStatsResult",
    "ProcWaitArgs",
    "ProcessInfo",
    "ProcessState",
    "SignalSendArgs",
]

APP_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
PROCESS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$"
POLICY_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
MAX_WAIT_SECONDS = 24 * 3600.0

SIGNALS = frozenset(
    {"SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGKILL", "SIGCONT",
     "SIGSTOP", "SIGALRM", "SIGWINCH"}
)  # fmt: skip
"""Signals a process may send: the ones an app has reason to (no SIGSEGV and the like)."""


class ProcessState(enum.StrEnum):
    """Where a process is in its life."""

    RUNNING = "running"
    SUSPENDED = "suspended"
    EXITED = "exited"


class ExitReason(enum.StrEnum):
    """Why a process ended."""

    EXITED = "exited"  # its command ended by itself (any code, or a signal it got)
    KILLED = "killed"  # proc.kill, its parent's end, or the kernel stopping
    OOM = "oom"  # the kernel's OOM killer, inside its memory limit
    TIMEOUT = "timeout"  # past its policy's wall-clock limit
    FAILED = "failed"  # its container could not be made or started


class Command(WireModel):
    """What a process's container runs."""

    argv: list[str] = Field(min_length=1, max_length=1024)
    env: dict[str, str] = Field(default_factory=dict, max_length=256)
    cwd: str | None = Field(default=None, max_length=4096, pattern=r"^/")

    @field_validator("argv")
    @classmethod
    def _plain_args(cls, argv: list[str]) -> list[str]:
        if not argv[0]:
            msg = "the program must not be empty"
            raise ValueError(msg)
        if any("\0" in arg or len(arg) > 65536 for arg in argv):
            msg = "arguments must hold no NUL and at most 65536 characters"
            raise ValueError(msg)
        return argv

    @field_validator("env")
    @classmethod
    def _plain_env(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not re.fullmatch(ENV_NAME_PATTERN, name) or "\0" in value or len(value) > 65536:
                msg = f"invalid environment variable {name!r}"
                raise ValueError(msg)
        return env


class ContainerInfo(WireModel):
    """The container a process runs in."""

    id: str = Field(description="the sandbox id")
    runtime: str
    uid: int = Field(description="the sandbox's own uid on the host")
    os_pid: int = Field(description="host pid of its init; 0 once it has stopped")


class ProcessInfo(WireModel):
    """One process as the kernel reports it."""

    pid: int
    ppid: int = Field(description="parent pid; 0 when the kernel itself is the parent")
    name: str
    app_id: str | None
    state: WireEnum[ProcessState]
    policy: str | None = Field(description="the sandbox policy, for a process with a command")
    capabilities: list[Grant] = Field(description="what it may do; file ones may be scoped by path")
    detached: bool = Field(description="survives its parent")
    priority: int = Field(description="scheduling priority, -20 (first) .. 19 (last)")
    container: ContainerInfo | None
    created_at: float = Field(description="Unix seconds")
    exited_at: float | None = Field(description="Unix seconds, once exited")
    exit_reason: WireEnum[ExitReason] | None
    exit_code: int | None
    term_signal: int | None = Field(description="the signal that ended it, if one did")


class LimitsNarrowing(WireModel):
    """Tighter limits than the policy's; a value above the policy's is refused (EPERM)."""

    memory: int | None = Field(default=None, ge=4 << 20, description="bytes")
    cpus: float | None = Field(default=None, gt=0, le=512)
    pids: int | None = Field(default=None, ge=1, le=65536)
    timeout: float | None = Field(default=None, gt=0, le=7 * 24 * 3600, description="seconds")
    disk: int | None = Field(
        default=None, ge=1 << 20, description="bytes of /data (an app's volume: when made)"
    )


class ProcSpawnArgs(WireModel):
    """Arguments of ``proc.spawn``."""

    name: str = Field(pattern=PROCESS_NAME_PATTERN)
    app_id: str | None = Field(default=None, pattern=APP_ID_PATTERN)
    parent: int | None = Field(default=None, ge=1, description="parent pid; the caller if None")
    capabilities: list[Grant] | None = Field(
        default=None,
        max_length=256,
        description=(
            "what it may do, within its policy's and the caller's grants; by default its"
            f" policy's capabilities (none without one); {APP} in a path is its app id"
        ),
    )
    policy: str | None = Field(
        default=None,
        pattern=POLICY_NAME_PATTERN,
        description="sandbox policy; 'standard' when a command is given without one",
    )
    command: Command | None = Field(default=None, description="run in a container of its own")
    limits: LimitsNarrowing | None = Field(default=None, description="narrow the policy's limits")
    detached: bool = Field(default=False, description="survive the parent's end")


class ProcPidArgs(WireModel):
    """Arguments naming one process."""

    pid: int = Field(ge=1)


class ProcWaitArgs(WireModel):
    """Arguments of ``proc.wait``."""

    pid: int = Field(ge=1)
    timeout: float | None = Field(
        default=None, gt=0, le=MAX_WAIT_SECONDS, description="seconds; ETIMEDOUT past it"
    )


class ProcListResult(WireModel):
    """Result of ``proc.list``."""

    processes: list[ProcessInfo]


class ProcStateResult(WireModel):
    """Result of ``proc.state``."""

    pid: int
    state: WireEnum[ProcessState]
    exit_reason: WireEnum[ExitReason] | None


class ProcStatsResult(WireModel):
    """Result of ``proc.stats``: the container's counters (zeros without one)."""

    pid: int
    memory_current_bytes: int
    memory_peak_bytes: int | None
    memory_limit_bytes: int | None
    cpu_usage_us: int
    cpu_throttled_periods: int
    pids_current: int
    pids_limit: int | None
    oom_kills: int


class ProcSetPriorityArgs(WireModel):
    """Arguments of ``proc.set_priority``."""

    pid: int = Field(ge=1)
    priority: int = Field(ge=-20, le=19, description="like nice(1): lower runs first")


class SignalSendArgs(WireModel):
    """Arguments of ``signal.send``."""

    pid: int = Field(ge=1)
    signal: str = Field(description="a name: " + ", ".join(sorted(SIGNALS)))

    @field_validator("signal")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in SIGNALS:
            msg = f"unknown or not allowed signal {name!r}"
            raise ValueError(msg)
        return name

    @property
    def number(self) -> int:
        """The signal's number."""
        return int(signal.Signals[self.signal])


class ProcExecArgs(WireModel):
    """Arguments of ``proc.exec``."""

    pid: int = Field(ge=1)
    command: Command
    stdin: bytes = Field(default=b"", max_length=1 << 20, description="given, then EOF")
    timeout: float | None = Field(default=None, gt=0, le=MAX_WAIT_SECONDS)


class OutputStream(enum.StrEnum):
    """Which of a command's output streams."""

    STDOUT = "stdout"
    STDERR = "stderr"


class ExecItem(WireModel):
    """One chunk of a running command's output."""

    stream: WireEnum[OutputStream]
    data: bytes


class ExecResult(WireModel):
    """How an executed command ended."""

    exit_code: int | None
    term_signal: int | None
    timed_out: bool
    dropped_bytes: int = Field(
        default=0, ge=0, description="output past the policy's output cap, not streamed"
    )


class ProcOutputArgs(WireModel):
    """Arguments of ``proc.output``."""

    pid: int = Field(ge=1)
    after: int = Field(default=0, ge=0, description="only chunks numbered above this one")
    follow: bool = Field(
        default=False, description="then stream new output until it ends (or sys.cancel)"
    )


class OutputItem(WireModel):
    """One chunk of a process's command output, numbered from 1 across both streams."""

    seq: int
    stream: WireEnum[OutputStream]
    data: bytes


class ProcOutputResult(WireModel):
    """Result of ``proc.output``."""

    last_seq: int = Field(description="the number of the last chunk so far (0: none)")
    evicted_bytes: int = Field(description="older output no longer kept")
    ended: bool = Field(description="the output has ended: every process of it has exited")


PROC_SPAWN = CallSpec(
    name="proc.spawn",
    summary="Create a process; with a command, in a container of its own under a policy.",
    args=ProcSpawnArgs,
    result=ProcessInfo,
    capability=Capability.SPAWN_PROCESS,
)
PROC_LIST = CallSpec(
    name="proc.list",
    summary="List live processes.",
    args=NoArgs,
    result=ProcListResult,
    capability=Capability.SYSTEM_INFO,
)
PROC_INFO = CallSpec(
    name="proc.info",
    summary="Describe one process (live, or recently exited).",
    args=ProcPidArgs,
    result=ProcessInfo,
    capability=Capability.SYSTEM_INFO,
)
PROC_STATE = CallSpec(
    name="proc.state",
    summary="One process's state.",
    args=ProcPidArgs,
    result=ProcStateResult,
    capability=Capability.SYSTEM_INFO,
)
PROC_STATS = CallSpec(
    name="proc.stats",
    summary="A process's resource use, read from its container's cgroup.",
    args=ProcPidArgs,
    result=ProcStatsResult,
    capability=Capability.SYSTEM_INFO,
)
PROC_KILL = CallSpec(
    name="proc.kill",
    summary="Kill a process and its descendants; returns its final state.",
    args=ProcPidArgs,
    result=ProcessInfo,
    capability=Capability.KILL_PROCESS,
)
PROC_WAIT = CallSpec(
    name="proc.wait",
    summary="Wait until a process has exited; returns its final state.",
    args=ProcWaitArgs,
    result=ProcessInfo,
    capability=Capability.SPAWN_PROCESS,
)
PROC_EXEC = CallSpec(
    name="proc.exec",
    summary="Run a command in a process's container, streaming its output.",
    args=ProcExecArgs,
    result=ExecResult,
    capability=Capability.SPAWN_PROCESS,
    item=ExecItem,
)
PROC_OUTPUT = CallSpec(
    name="proc.output",
    summary=(
        "The recent output (stdout, stderr) of a process's command, then, with follow, what"
        " it writes next."
    ),
    args=ProcOutputArgs,
    result=ProcOutputResult,
    capability=Capability.SYSTEM_INFO,
    item=OutputItem,
)
PROC_SUSPEND = CallSpec(
    name="proc.suspend",
    summary="Freeze a process's container (cgroup freezer).",
    args=ProcPidArgs,
    result=ProcessInfo,
    capability=Capability.SCHEDULER_CONTROL,
)
PROC_RESUME = CallSpec(
    name="proc.resume",
    summary="Thaw a suspended process's container.",
    args=ProcPidArgs,
    result=ProcessInfo,
    capability=Capability.SCHEDULER_CONTROL,
)
PROC_SET_PRIORITY = CallSpec(
    name="proc.set_priority",
    summary="Set a process's CPU priority (its container's cpu weight).",
    args=ProcSetPriorityArgs,
    result=ProcessInfo,
    capability=Capability.SCHEDULER_CONTROL,
)
SIGNAL_SEND = CallSpec(
    name="signal.send",
    summary="Send a signal to a process's command.",
    args=SignalSendArgs,
    result=ProcessInfo,
    capability=Capability.KILL_PROCESS,
)

SPECS = (
    PROC_SPAWN, PROC_LIST, PROC_INFO, PROC_STATE, PROC_STATS, PROC_KILL, PROC_WAIT, PROC_EXEC,
    PROC_OUTPUT, PROC_SUSPEND, PROC_RESUME, PROC_SET_PRIORITY, SIGNAL_SEND,
)  # fmt: skip
