"""What a cgroup is asked to enforce, and what it reports back."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sandbox.errors import FailedPreconditionError, InvalidArgumentError

__all__ = [
    "CPU_PERIOD_US",
    "CgroupError",
    "CgroupMode",
    "CgroupStats",
    "Resources",
    "weight_to_shares",
]

CPU_PERIOD_US = 100_000


class CgroupMode(enum.StrEnum):
    """Which cgroup hierarchies the host mounts."""

    V2 = "v2"  # one unified hierarchy with the controllers (production hosts)
    HYBRID = "hybrid"  # v1 controllers, plus a v2 hierarchy without them (this CI host)
    V1 = "v1"  # v1 controllers only


class CgroupError(FailedPreconditionError):
    """A cgroup operation the kernel refused."""


@dataclass(frozen=True)
class Resources:
    """Limits for one cgroup; None leaves a limit as it is.

    Attributes:
        memory_max: hard limit in bytes; past it the OOM killer acts.
        memory_high: throttling threshold in bytes (v1: the soft limit).
        swap_max: swap allowed on top of memory, in bytes (0: none).
        cpu_max: CPU time as a number of CPUs (0.5: half of one).
        cpu_weight: relative share under contention, 1..10000 (100 is the default).
        pids_max: most tasks at once.
    """

    memory_max: int | None = None
    memory_high: int | None = None
    swap_max: int | None = None
    cpu_max: float | None = None
    cpu_weight: int | None = None
    pids_max: int | None = None

    def __post_init__(self) -> None:
        for name in ("memory_max", "memory_high", "swap_max", "pids_max"):
            value = getattr(self, name)
            if value is not None and value < 0:
                msg = f"{name} must not be negative"
                raise InvalidArgumentError(msg)
        if self.cpu_max is not None and not self.cpu_max > 0:
            msg = "cpu_max must be more than 0"
            raise InvalidArgumentError(msg)
        if self.cpu_weight is not None and not 1 <= self.cpu_weight <= 10_000:
            msg = "cpu_weight must be within 1..10000"
            raise InvalidArgumentError(msg)

    @property
    def cpu_quota_us(self) -> int | None:
        """The CFS quota per :data:`CPU_PERIOD_US` that ``cpu_max`` means."""
        if self.cpu_max is None:
            return None
        return max(1000, round(self.cpu_max * CPU_PERIOD_US))


def weight_to_shares(weight: int) -> int:
    """v2 cpu.weight (1..10000) to v1 cpu.shares (2..262144), as runc converts it."""
    return 2 + ((weight - 1) * 262_142) // 9_999


@dataclass(frozen=True)
class CgroupStats:
    """A cgroup's counters at one moment; None where this kernel does not report one."""

    memory_current: int
    memory_peak: int | None
    oom_kills: int
    pids_current: int
    pids_peak: int | None
    pids_limit_hits: int
    cpu_usage_us: int
    cpu_periods: int
    cpu_throttled_periods: int
    cpu_throttled_us: int
