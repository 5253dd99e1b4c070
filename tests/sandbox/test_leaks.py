"""Hundreds of sandboxes, some killed: afterwards nothing of them is left anywhere."""

import os
import subprocess
from pathlib import Path

import trio

from sandbox.runtime import Outcome

RUNS = 200


def loop_devices():
    return subprocess.run(["losetup", "-a"], capture_output=True, check=True).stdout


def sandbox_uid_processes(base, count):
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = next(
                int(line.split()[1])
                for line in status.read_text().splitlines()
                if line.startswith("Uid:")
            )
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        if base <= uid < base + count:
            found.append(status.parent.name)
    return found


async def test_two_hundred_runs_leave_nothing_behind(run, runtime, state_dir):
    fds = len(os.listdir("/proc/self/fd"))
    loops = loop_devices()
    limiter = trio.CapacityLimiter(4)
    outcomes = []

    async def one(i):
        async with limiter:
            if i % 10 == 0:  # a killed run: past its time limit, with a child of its own
                result, _ = await run(["sh", "-c", "sleep 30 & sleep 30"], time_limit=0.2)
            else:
                result, _ = await run(["sh", "-c", "echo $$ > /data/pid; cat /data/pid"])
            outcomes.append(result.status)

    async with trio.open_nursery() as nursery:
        for i in range(RUNS):
            nursery.start_soon(one, i)

    assert outcomes.count(Outcome.TIMEOUT) == RUNS // 10
    assert outcomes.count(Outcome.EXITED) == RUNS - RUNS // 10
    assert list(runtime.bundles.iterdir()) == []
    assert runtime.uids.reserved() == {}
    assert await runtime.list_ids() == []
    assert runtime.cgroups.children(runtime.cgroup_parent) == []
    assert str(state_dir) not in Path("/proc/self/mountinfo").read_text()
    assert loop_devices() == loops
    assert sandbox_uid_processes(runtime.uids.base, runtime.uids.count) == []
    await runtime.aclose()  # an engine client pools its connections: those are not leaks
    assert len(os.listdir("/proc/self/fd")) <= fds
