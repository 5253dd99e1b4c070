"""cgroup v2: one unified hierarchy; controllers are enabled from the parent down."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sandbox.cgroups._base import GONE, Cgroup, read_int, read_keyed, remove_dir, write_value
from sandbox.cgroups._types import CPU_PERIOD_US, CgroupStats, Resources

__all__ = ["V2Cgroup"]

_CONTROLLERS = ("cpu", "memory", "pids")


class V2Cgroup(Cgroup):
    """A cgroup in the unified hierarchy mounted at ``root``."""

    def __init__(self, root: Path, name: str) -> None:
        super().__init__(name)
        self.root = root
        self.path = root / name

    def exists(self) -> bool:
        return self.path.is_dir()

    def create(self) -> None:
        # Each level must delegate the controllers to the next before a leaf can use them.
        parts = self.name.split("/")
        current = self.root
        for part in parts:
            available = set((current / "cgroup.controllers").read_text().split())
            enabled = set((current / "cgroup.subtree_control").read_text().split())
            missing = [c for c in _CONTROLLERS if c in available and c not in enabled]
            if missing:
                write_value(current / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            current = current / part
            current.mkdir(exist_ok=True)

    def delete(self) -> None:
        remove_dir(self.path)

    def add(self, pid: int) -> None:
        write_value(self.path / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError as exc:
            if exc.errno in GONE:
                return []
            raise

    def apply(self, resources: Resources) -> None:
        if resources.memory_max is not None:
            write_value(self.path / "memory.max", resources.memory_max)
        if resources.memory_high is not None:
            write_value(self.path / "memory.high", resources.memory_high)
        if resources.swap_max is not None:
            write_value(self.path / "memory.swap.max", resources.swap_max)
        if resources.cpu_quota_us is not None:
            write_value(self.path / "cpu.max", f"{resources.cpu_quota_us} {CPU_PERIOD_US}")
        if resources.cpu_weight is not None:
            write_value(self.path / "cpu.weight", resources.cpu_weight)
        if resources.pids_max is not None:
            write_value(self.path / "pids.max", resources.pids_max)

    def stats(self) -> CgroupStats:
        peak = pids_peak = None
        with contextlib.suppress(FileNotFoundError):  # memory.peak: kernel 5.19+
            peak = read_int(self.path / "memory.peak")
        with contextlib.suppress(FileNotFoundError):  # pids.peak: kernel 6.1+
            pids_peak = read_int(self.path / "pids.peak")
        cpu = read_keyed(self.path / "cpu.stat")
        return CgroupStats(
            memory_current=read_int(self.path / "memory.current"),
            memory_peak=peak,
            oom_kills=read_keyed(self.path / "memory.events").get("oom_kill", 0),
            pids_current=read_int(self.path / "pids.current"),
            pids_peak=pids_peak,
            pids_limit_hits=read_keyed(self.path / "pids.events").get("max", 0),
            cpu_usage_us=cpu.get("usage_usec", 0),
            cpu_periods=cpu.get("nr_periods", 0),
            cpu_throttled_periods=cpu.get("nr_throttled", 0),
            cpu_throttled_us=cpu.get("throttled_usec", 0),
        )

    def _set_frozen(self, *, frozen: bool) -> None:
        write_value(self.path / "cgroup.freeze", 1 if frozen else 0)

    def is_frozen(self) -> bool:
        return read_keyed(self.path / "cgroup.events").get("frozen", 0) == 1

    def kill(self, *, timeout: float = 10.0) -> None:
        """SIGKILL everything in the cgroup with cgroup.kill (5.14+), else freeze and sweep."""
        kill_file = self.path / "cgroup.kill"
        if not kill_file.exists():
            super().kill(timeout=timeout)
            return
        with self._gone_is_empty():
            write_value(kill_file, 1)
            self._wait(lambda: not self.pids(), timeout, "empty")
