"""Policies: named sandbox profiles of capabilities, limits, network and mounts (DESIGN 3.3).

The hardening every container gets is not part of a policy: a policy can only choose
limits and grants within it.
"""

from __future__ import annotations

import enum
from pathlib import PurePosixPath
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    field_serializer,
    field_validator,
    model_validator,
)

from sandbox.capabilities import Grant
from sandbox.policy._units import Bytes, Seconds

__all__ = [
    "AllowRule",
    "Limits",
    "Mount",
    "NetworkMode",
    "NetworkPolicy",
    "Policy",
    "RuntimeName",
]

_POLICY_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
# Where a policy may not mount host paths, nor above: the container's own machinery, and
# the host's programs (/usr, and the top-level directories that are or lead into it).
_RESERVED = (
    "/proc", "/sys", "/dev", "/tmp", "/data", "/run/agentos", "/etc",  # noqa: S108 - in the sandbox
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
)  # fmt: skip

MiB = 1 << 20


class RuntimeName(enum.StrEnum):
    """Which container runtime runs a sandbox."""

    AUTO = "auto"
    RUNC = "runc"
    CRUN = "crun"
    DOCKER = "docker"


class NetworkMode(enum.StrEnum):
    """What a sandbox's network namespace can reach."""

    NONE = "none"  # loopback only
    EGRESS = "egress"  # outbound connections anywhere
    ALLOWLIST = "allowlist"  # outbound to the listed CIDR:port pairs only


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _split_rule(value: object) -> object:
    """Accept ``"10.0.0.0/8:443"`` as well as ``{"cidr": ..., "port": ...}``."""
    if isinstance(value, str):
        cidr, sep, port = value.rpartition(":")
        if not sep or ("/" not in cidr and ":" in cidr):  # bare IPv6, no port
            return {"cidr": value}
        return {"cidr": cidr, "port": None if port in ("", "*") else port}
    return value


class AllowRule(_Strict):
    """One destination an ``allowlist`` sandbox may connect to."""

    cidr: IPvAnyNetwork
    port: int | None = Field(default=None, ge=1, le=65535, description="None: any port")


class NetworkPolicy(_Strict):
    """The sandbox's network."""

    mode: NetworkMode = NetworkMode.NONE
    allow: list[Annotated[AllowRule, BeforeValidator(_split_rule)]] = Field(
        default_factory=list, max_length=256
    )

    @model_validator(mode="after")
    def _allow_only_for_allowlist(self) -> Self:
        if self.mode is NetworkMode.ALLOWLIST and not self.allow:
            msg = "mode 'allowlist' needs at least one rule in 'allow'"
            raise ValueError(msg)
        if self.mode is not NetworkMode.ALLOWLIST and self.allow:
            msg = f"'allow' rules apply only to mode 'allowlist', not {self.mode.value!r}"
            raise ValueError(msg)
        return self


class Mount(_Strict):
    """A host path shown read-only inside the sandbox."""

    source: PurePosixPath = Field(description="absolute host path")
    destination: PurePosixPath = Field(description="absolute path inside the sandbox")

    @field_validator("source", "destination")
    @classmethod
    def _absolute_and_plain(cls, path: PurePosixPath) -> PurePosixPath:
        if not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
            msg = f"must be an absolute path below / without '..': {path}"
            raise ValueError(msg)
        return path

    @field_validator("destination")
    @classmethod
    def _not_reserved(cls, path: PurePosixPath) -> PurePosixPath:
        for reserved in map(PurePosixPath, _RESERVED):
            if path.is_relative_to(reserved):
                msg = f"{path} is inside {reserved}, which the sandbox itself provides"
                raise ValueError(msg)
            if reserved.is_relative_to(path):
                msg = f"{path} would cover {reserved}, which the sandbox itself provides"
                raise ValueError(msg)
        return path


class Limits(_Strict):
    """Resource limits, all enforced by the kernel (cgroups, rlimits, tmpfs sizes)."""

    memory: Bytes = Field(default=256 * MiB, ge=4 * MiB, description="hard memory limit")
    memory_high: Bytes | None = Field(
        default=None, ge=4 * MiB, description="reclaim pressure starts here"
    )
    cpus: float = Field(default=1.0, gt=0, le=512, description="CPU time, in CPUs")
    pids: int = Field(default=128, ge=1, le=65536, description="tasks at once")
    nofile: int = Field(default=1024, ge=16, le=1 << 20, description="open files")
    tmpfs: Bytes = Field(default=64 * MiB, ge=1 * MiB, description="size of /tmp")
    disk: Bytes | None = Field(default=None, ge=1 * MiB, description="quota of /data")
    timeout: Seconds | None = Field(default=None, le=7 * 24 * 3600, description="wall clock")
    output: Bytes = Field(default=16 * MiB, ge=0, description="stdout+stderr kept")

    @model_validator(mode="after")
    def _high_below_max(self) -> Self:
        if self.memory_high is not None and self.memory_high > self.memory:
            msg = "memory_high must not exceed memory"
            raise ValueError(msg)
        return self


class Policy(_Strict):
    """A named sandbox profile."""

    name: str = Field(pattern=_POLICY_NAME)
    description: str = Field(default="", max_length=500)
    capabilities: frozenset[Grant] = Field(
        default=frozenset(),
        max_length=256,
        description="what its processes may ask the kernel; file ones may be scoped by path",
    )
    limits: Limits = Field(default_factory=Limits)
    network: NetworkPolicy = Field(default_factory=NetworkPolicy)
    mounts: list[Mount] = Field(default_factory=list, max_length=32)
    runtime: RuntimeName = RuntimeName.AUTO

    @field_serializer("capabilities")
    def _sorted_capabilities(self, capabilities: frozenset[Grant]) -> list[str]:
        return [str(grant) for grant in sorted(capabilities)]

    @field_validator("mounts")
    @classmethod
    def _distinct_destinations(cls, mounts: list[Mount]) -> list[Mount]:
        destinations = [m.destination for m in mounts]
        if len(set(destinations)) != len(destinations):
            msg = "two mounts share a destination"
            raise ValueError(msg)
        return mounts
