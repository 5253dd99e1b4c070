"""mem.* through the call table: host figures, the containers' budget, reclaiming."""

from pathlib import Path

import pytest

from kernel.abi import ErrorCode
from kernel.abi.memory import Pressure
from kernel.core import Kernel
from kernel.memory import pressure_level
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch

MiB = 1 << 20


def meminfo(name):
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


async def test_stats_are_the_hosts_and_the_budget_defaults_to_most_of_it():
    stats = await dispatch(Kernel(), ADMIN, "mem.stats")
    assert stats["total_bytes"] == meminfo("MemTotal")
    assert 0 < stats["available_bytes"] <= stats["total_bytes"]
    assert stats["budget_bytes"] == int(stats["total_bytes"] * 0.8)
    assert stats["committed_bytes"] == 0
    assert stats["kernel_rss_bytes"] > 10 * MiB  # this very Python process
    assert stats["pressure"] in {p.value for p in Pressure}


@pytest.mark.parametrize(
    ("available", "some", "full", "level"),
    [
        (50, None, None, Pressure.LOW),
        (20, None, None, Pressure.MEDIUM),
        (50, 6.0, 0.0, Pressure.MEDIUM),
        (8, None, None, Pressure.HIGH),
        (50, 25.0, 1.0, Pressure.HIGH),
        (4, None, None, Pressure.CRITICAL),
        (50, 30.0, 12.0, Pressure.CRITICAL),
    ],
)
def test_pressure_comes_from_what_is_available_or_from_stalls(available, some, full, level):
    assert pressure_level(100, available, some, full) is level


async def test_a_spawn_past_the_budget_is_enomem_and_leaves_nothing():
    kernel = Kernel(memory_budget=100 * MiB)
    denied = await code_of(
        kernel,
        ADMIN,
        "proc.spawn",
        name="big",
        command={"argv": ["true"]},  # standard: 256 MiB
    )
    assert denied == ErrorCode.ENOMEM
    assert (await dispatch(kernel, ADMIN, "proc.list"))["processes"] == []


async def test_process_stats_are_its_own_or_a_descendants():
    kernel = Kernel()
    mine = await dispatch(kernel, ADMIN, "proc.spawn", name="mine", capabilities=["system_info"])
    other = await dispatch(kernel, ADMIN, "proc.spawn", name="other")
    caller = as_process(mine["pid"], "system_info")
    stats = await dispatch(kernel, caller, "mem.process_stats", pid=mine["pid"])
    assert stats == {
        "pid": mine["pid"], "current_bytes": 0, "peak_bytes": None, "limit_bytes": None,
        "oom_kills": 0,
    }  # fmt: skip
    assert await code_of(
        kernel, caller, "mem.process_stats", pid=other["pid"]
    ) == ErrorCode.EPERM  # fmt: skip


async def test_gc_forgets_the_exited_and_frees_what_dead_processes_still_hold():
    kernel = Kernel()
    gone = await dispatch(kernel, ADMIN, "proc.spawn", name="gone")
    await dispatch(kernel, ADMIN, "proc.kill", pid=gone["pid"])
    kernel.pipes.create(creator=4242, writer=4242, reader=4242, capacity=1000)  # a leak
    result = await dispatch(kernel, ADMIN, "mem.gc")
    assert (result["exited_forgotten"], result["holders_swept"]) == (1, 1)
    assert (kernel.pipes.pipes(), kernel.pipes.reserved) == ([], 0)
    assert await code_of(kernel, ADMIN, "proc.info", pid=gone["pid"]) == ErrorCode.ESRCH
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="app", capabilities=["system_info"])
    caller = as_process(app["pid"], "system_info")
    assert await code_of(kernel, caller, "mem.gc") == ErrorCode.EPERM  # memory_control
