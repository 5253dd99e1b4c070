"""``proc.*``: the process table."""

from __future__ import annotations

import enum

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "PROC_INFO",
    "PROC_KILL",
    "PROC_LIST",
    "PROC_SPAWN",
    "ProcListResult",
    "ProcPidArgs",
    "ProcSpawnArgs",
    "ProcessInfo",
    "ProcessState",
]

APP_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
PROCESS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$"


class ProcessState(enum.StrEnum):
    """Where a process is in its life."""

    RUNNING = "running"
    EXITED = "exited"


class ProcessInfo(WireModel):
    """One process as the kernel reports it."""

    pid: int
    ppid: int = Field(description="parent pid; 0 when the kernel itself is the parent")
    name: str
    app_id: str | None
    state: WireEnum[ProcessState]
    capabilities: list[WireEnum[Capability]]
    created_at: float = Field(description="Unix seconds")
    exited_at: float | None = Field(description="Unix seconds, once exited")
    exit_code: int | None
    term_signal: int | None = Field(description="the signal that ended it, if one did")


class ProcSpawnArgs(WireModel):
    """Arguments of ``proc.spawn``."""

    name: str = Field(pattern=PROCESS_NAME_PATTERN)
    app_id: str | None = Field(default=None, pattern=APP_ID_PATTERN)
    parent: int | None = Field(default=None, ge=1, description="parent pid; the caller if None")
    capabilities: list[WireEnum[Capability]] = Field(
        default_factory=list, max_length=len(Capability)
    )


class ProcPidArgs(WireModel):
    """Arguments naming one process."""

    pid: int = Field(ge=1)


class ProcListResult(WireModel):
    """Result of ``proc.list``."""

    processes: list[ProcessInfo]


PROC_SPAWN = CallSpec(
    name="proc.spawn",
    summary="Create a process entry with a set of capabilities.",
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
    summary="Describe one process.",
    args=ProcPidArgs,
    result=ProcessInfo,
    capability=Capability.SYSTEM_INFO,
)
PROC_KILL = CallSpec(
    name="proc.kill",
    summary="Kill a process and its descendants; returns its final state.",
    args=ProcPidArgs,
    result=ProcessInfo,
    capability=Capability.KILL_PROCESS,
)

SPECS = (PROC_SPAWN, PROC_LIST, PROC_INFO, PROC_KILL)
