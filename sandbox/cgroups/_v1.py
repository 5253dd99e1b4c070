"""cgroup v1: one hierarchy per controller; a cgroup is a directory in each of them."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.cgroups._base import GONE, Cgroup, read_int, read_keyed, remove_dir, write_value
from sandbox.cgroups._types import (
    CPU_PERIOD_US,
    CgroupError,
    CgroupStats,
    Resources,
    weight_to_shares,
)

__all__ = ["V1_CONTROLLERS", "V1Cgroup"]

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
"""The v1 controllers a sandbox cgroup lives in (cpuset and devices are runc's business)."""


class V1Cgroup(Cgroup):
    """A cgroup present in each of the v1 hierarchies in ``mounts`` (controller -> mountpoint).

    ``others`` are further hierarchies (named ones, the empty unified one of a hybrid
    host) where a runtime may also have made the cgroup: :meth:`delete` removes it there.
    """

    def __init__(
        self, mounts: Mapping[str, Path], name: str, *, others: Sequence[Path] = ()
    ) -> None:
        super().__init__(name)
        self.others = list(others)
        missing = [c for c in ("memory", "pids", "freezer") if c not in mounts]
        if missing:
            msg = f"cgroup v1 controllers missing: {', '.join(missing)}"
            raise CgroupError(msg)
        self.mounts = dict(mounts)

    def _dir(self, controller: str) -> Path:
        return self.mounts[controller] / self.name

    def _dirs(self) -> list[Path]:
        # cpu and cpuacct are often one hierarchy ("cpu,cpuacct"): each directory once.
        seen: dict[Path, None] = {}
        for controller in V1_CONTROLLERS:
            if controller in self.mounts:
                seen.setdefault(self._dir(controller), None)
        return list(seen)

    def exists(self) -> bool:
        return self._dir("memory").is_dir()

    def create(self) -> None:
        for directory in self._dirs():
            directory.mkdir(parents=True, exist_ok=True)

    def delete(self) -> None:
        for directory in [*self._dirs(), *(other / self.name for other in self.others)]:
            remove_dir(directory)

    def add(self, pid: int) -> None:
        for directory in self._dirs():
            write_value(directory / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self._dir("freezer") / "cgroup.procs").read_text().split()]
        except OSError as exc:
            if exc.errno in GONE:
                return []
            raise

    def apply(self, resources: Resources) -> None:
        memory = self._dir("memory")
        if resources.memory_max is not None:
            self._set_memory(memory, resources.memory_max, resources.swap_max or 0)
        elif resources.swap_max is not None:
            limit = read_int(memory / "memory.limit_in_bytes")
            self._set_memory(memory, limit, resources.swap_max)
        if resources.memory_high is not None:
            write_value(memory / "memory.soft_limit_in_bytes", resources.memory_high)
        if "cpu" in self.mounts:
            cpu = self._dir("cpu")
            if resources.cpu_quota_us is not None:
                write_value(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
                write_value(cpu / "cpu.cfs_quota_us", resources.cpu_quota_us)
            if resources.cpu_weight is not None:
                write_value(cpu / "cpu.shares", weight_to_shares(resources.cpu_weight))
        if resources.pids_max is not None:
            write_value(self._dir("pids") / "pids.max", resources.pids_max)

    @staticmethod
    def _set_memory(memory: Path, limit: int, swap: int) -> None:
        """Set memory and memory+swap; the kernel wants memsw >= memory at every step."""
        memsw = memory / "memory.memsw.limit_in_bytes"
        if not memsw.exists():  # no swap accounting: the memory limit alone
            write_value(memory / "memory.limit_in_bytes", limit)
            return
        current_memsw = read_int(memsw)
        if limit + swap > current_memsw:
            write_value(memsw, limit + swap)
            write_value(memory / "memory.limit_in_bytes", limit)
        else:
            write_value(memory / "memory.limit_in_bytes", limit)
            write_value(memsw, limit + swap)

    def stats(self) -> CgroupStats:
        memory = self._dir("memory")
        cpu_stat: dict[str, int] = {}
        usage_ns = 0
        if "cpu" in self.mounts:
            with contextlib.suppress(FileNotFoundError):
                cpu_stat = read_keyed(self._dir("cpu") / "cpu.stat")
        if "cpuacct" in self.mounts:
            with contextlib.suppress(FileNotFoundError):
                usage_ns = read_int(self._dir("cpuacct") / "cpuacct.usage")
        return CgroupStats(
            memory_current=read_int(memory / "memory.usage_in_bytes"),
            memory_peak=read_int(memory / "memory.max_usage_in_bytes"),
            oom_kills=read_keyed(memory / "memory.oom_control").get("oom_kill", 0),
            pids_current=read_int(self._dir("pids") / "pids.current"),
            pids_peak=None,  # v1 keeps no peak
            pids_limit_hits=read_keyed(self._dir("pids") / "pids.events").get("max", 0),
            cpu_usage_us=usage_ns // 1000,
            cpu_periods=cpu_stat.get("nr_periods", 0),
            cpu_throttled_periods=cpu_stat.get("nr_throttled", 0),
            cpu_throttled_us=cpu_stat.get("throttled_time", 0) // 1000,
        )

    def _set_frozen(self, *, frozen: bool) -> None:
        write_value(self._dir("freezer") / "freezer.state", "FROZEN" if frozen else "THAWED")

    def is_frozen(self) -> bool:
        return (self._dir("freezer") / "freezer.state").read_text().strip() == "FROZEN"
