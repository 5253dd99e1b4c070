"""``sys.env_*``, ``sys.cwd_*`` and ``time.*``: a process's own context, and the clock."""

from __future__ import annotations

from pydantic import Field, field_validator

from kernel.abi._catalog import CallSpec, WireModel
from kernel.abi.process import ENV_NAME_PATTERN
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "MAX_ENV_VARS",
    "MAX_SLEEP_SECONDS",
    "SYS_CWD_GET",
    "SYS_CWD_SET",
    "SYS_ENV_GET",
    "SYS_ENV_SET",
    "TIME_NOW",
    "TIME_SLEEP",
    "TIME_UPTIME",
    "CwdResult",
    "CwdSetArgs",
    "EnvGetArgs",
    "EnvResult",
    "EnvSetArgs",
    "TimeNowResult",
    "TimeSleepArgs",
    "TimeSleepResult",
    "TimeUptimeResult",
]

MAX_ENV_VARS = 256
MAX_ENV_VALUE = 65536
MAX_PATH = 4096
MAX_SLEEP_SECONDS = 60.0


class EnvGetArgs(WireModel):
    """Arguments of ``sys.env_get``."""

    name: str | None = Field(
        default=None, pattern=ENV_NAME_PATTERN, description="one variable; all if None"
    )


class EnvResult(WireModel):
    """A process's environment, or the part asked for (absent names are left out)."""

    env: dict[str, str]


class EnvSetArgs(WireModel):
    """Arguments of ``sys.env_set``."""

    name: str = Field(pattern=ENV_NAME_PATTERN)
    value: str | None = Field(max_length=MAX_ENV_VALUE, description="None removes it")

    @field_validator("value")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\0" in value:
            msg = "must not contain NUL"
            raise ValueError(msg)
        return value


class CwdResult(WireModel):
    """A process's working directory (in the kernel's file namespace)."""

    cwd: str


class CwdSetArgs(WireModel):
    """Arguments of ``sys.cwd_set``."""

    path: str = Field(min_length=1, max_length=MAX_PATH, description="absolute, or from the cwd")

    @field_validator("path")
    @classmethod
    def _no_nul(cls, path: str) -> str:
        if "\0" in path:
            msg = "must not contain NUL"
            raise ValueError(msg)
        return path


class TimeNowResult(WireModel):
    """Result of ``time.now``."""

    unix: float = Field(description="Unix seconds (wall clock)")
    monotonic: float = Field(description="seconds on the kernel's monotonic clock")
    iso: str = Field(description="the wall clock in ISO 8601, UTC")


class TimeSleepArgs(WireModel):
    """Arguments of ``time.sleep``."""

    seconds: float = Field(ge=0, le=MAX_SLEEP_SECONDS)


class TimeSleepResult(WireModel):
    """Result of ``time.sleep``."""

    slept: float = Field(description="seconds actually slept")


class TimeUptimeResult(WireModel):
    """Result of ``time.uptime``."""

    kernel_seconds: float
    process_seconds: float | None = Field(description="the caller's process's age, if it has one")


SYS_ENV_GET = CallSpec(
    name="sys.env_get",
    summary="Read the calling process's environment (never the kernel's own).",
    args=EnvGetArgs,
    result=EnvResult,
    capability=Capability.SYSTEM_INFO,
)
SYS_ENV_SET = CallSpec(
    name="sys.env_set",
    summary="Set or remove a variable of the calling process's environment.",
    args=EnvSetArgs,
    result=EnvResult,
    capability=Capability.SYSTEM_INFO,
)
SYS_CWD_GET = CallSpec(
    name="sys.cwd_get",
    summary="The calling process's working directory.",
    args=NoArgs,
    result=CwdResult,
    capability=Capability.SYSTEM_INFO,
)
SYS_CWD_SET = CallSpec(
    name="sys.cwd_set",
    summary="Change the calling process's working directory to an existing directory.",
    args=CwdSetArgs,
    result=CwdResult,
    capability=Capability.SYSTEM_INFO,
)
TIME_NOW = CallSpec(
    name="time.now",
    summary="The kernel's wall and monotonic clocks.",
    args=NoArgs,
    result=TimeNowResult,
    capability=Capability.TIME_ACCESS,
)
TIME_SLEEP = CallSpec(
    name="time.sleep",
    summary="Return after a while (at most 60 s); other calls go on meanwhile.",
    args=TimeSleepArgs,
    result=TimeSleepResult,
    capability=Capability.TIME_ACCESS,
)
TIME_UPTIME = CallSpec(
    name="time.uptime",
    summary="How long the kernel, and the calling process, have been running.",
    args=NoArgs,
    result=TimeUptimeResult,
    capability=Capability.TIME_ACCESS,
)

SPECS = (SYS_ENV_GET, SYS_ENV_SET, SYS_CWD_GET, SYS_CWD_SET, TIME_NOW, TIME_SLEEP, TIME_UPTIME)
