"""Memory: the host's, read from /proc, and the budget the kernel's containers share.

A container's memory limit is memory the kernel has promised it. The budget bounds
what all running containers are promised together (by default 80% of the host's
memory), so a spawn that would overcommit it is refused with ENOMEM rather than left to
the host's OOM killer. The pressure level comes from real use: what the host still has
available and, where the kernel offers it, pressure stall information (PSI).
"""

from __future__ import annotations

from pathlib import Path

from kernel.abi import ErrorCode, SyscallExhaustedError
from kernel.abi.memory import Pressure
from kernel.proc import ProcessTable

__all__ = ["MemoryBudget", "host_memory", "kernel_rss", "memory_psi", "pressure_level"]

DEFAULT_BUDGET_SHARE = 0.8


def _kilobytes(path: Path, *names: str) -> dict[str, int]:
    found = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in names:
            found[key] = int(value.split()[0]) * 1024
    return found


def host_memory() -> tuple[int, int]:
    """(MemTotal, MemAvailable) in bytes."""
    values = _kilobytes(Path("/proc/meminfo"), "MemTotal", "MemAvailable")
    return values["MemTotal"], values.get("MemAvailable", 0)


def kernel_rss() -> int:
    """This process's resident memory in bytes."""
    return _kilobytes(Path("/proc/self/status"), "VmRSS").get("VmRSS", 0)


def memory_psi() -> tuple[float | None, float | None]:
    """(some avg10, full avg10) from /proc/pressure/memory, or Nones without PSI."""
    try:
        text = Path("/proc/pressure/memory").read_text()
    except OSError:
        return None, None
    averages: dict[str, float] = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        for item in fields:
            key, _, value = item.partition("=")
            if key == "avg10":
                averages[kind] = float(value)
    return averages.get("some"), averages.get("full")


def pressure_level(
    total: int, available: int, some: float | None = None, full: float | None = None
) -> Pressure:
    """How pressed memory is: by the share still available, or by stalls if worse."""
    share = available / total if total else 0.0
    some = some or 0.0
    full = full or 0.0
    if share < 0.05 or full >= 10:
        return Pressure.CRITICAL
    if share < 0.10 or some >= 20:
        return Pressure.HIGH
    if share < 0.25 or some >= 5:
        return Pressure.MEDIUM
    return Pressure.LOW


class MemoryBudget:
    """What running containers are promised together, against a budget.

    Args:
        processes: the table whose containers count.
        budget: bytes; by default 80% of the host's memory.
    """

    def __init__(self, processes: ProcessTable, *, budget: int | None = None) -> None:
        self._processes = processes
        self.budget = budget if budget is not None else int(host_memory()[0] * DEFAULT_BUDGET_SHARE)

    def committed(self) -> int:
        """The memory limits of live processes that run (or are starting) a container."""
        return sum(
            process.policy.limits.memory
            for process in self._processes.live()
            if process.policy is not None and process.launching is not None
        )

    def check(self, memory: int) -> None:
        """Refuse a container of ``memory`` bytes that would pass the budget.

        Raises:
            SyscallExhaustedError: ENOMEM, with what is committed and the budget.
        """
        committed = self.committed()
        if committed + memory > self.budget:
            msg = (
                f"the memory budget is spent: {committed} of {self.budget} bytes promised to "
                f"running containers, {memory} more asked"
            )
            raise SyscallExhaustedError(msg, code=ErrorCode.ENOMEM)
