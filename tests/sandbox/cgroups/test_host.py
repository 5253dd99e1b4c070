"""The cgroup manager on this host's real hierarchy (v1 here; pure v2 inside the v2 VM).

Each test makes its own cgroup under ``agentos-test/``, puts real processes in it, and
removes everything at the end.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sandbox.cgroups import CgroupManager, CgroupMode, Resources

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups needs root"),
    pytest.mark.v2vm,
]

PARENT = "agentos-test"


@pytest.fixture
def manager():
    return CgroupManager()


@pytest.fixture
def cgroup(manager):
    cgroup = manager.cgroup(f"{PARENT}/{uuid.uuid4().hex[:12]}")
    cgroup.create()
    try:
        yield cgroup
    finally:
        cgroup.kill()
        cgroup.delete()
        manager.remove_if_empty(PARENT)
        assert not cgroup.exists()


@pytest.fixture
def waiting():
    """Start Python processes that wait for a line on stdin before running their code."""
    started = []

    def start(code):
        process = subprocess.Popen(
            [sys.executable, "-c", f"import sys; sys.stdin.readline(); {code}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()
        process.stdin.close()


def go(process):
    process.stdin.write(b"go\n")
    process.stdin.flush()


def state_of(pid):
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_the_mode_is_detected(manager):
    assert manager.mode in set(CgroupMode)
    assert manager.layout.describe().startswith("cgroup")


def test_processes_join_and_are_listed(cgroup, waiting):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        cgroup.add(sleeper.pid)
        assert cgroup.pids() == [sleeper.pid]
        assert cgroup.stats().pids_current == 1
    finally:
        sleeper.kill()
        sleeper.wait()


def test_memory_limit_ends_in_an_oom_kill_that_is_counted(cgroup, waiting):
    cgroup.apply(Resources(memory_max=32 << 20, swap_max=0))
    hog = waiting("x = bytearray(256 << 20)")
    cgroup.add(hog.pid)
    go(hog)
    assert hog.wait(timeout=30) == -9
    stats = cgroup.stats()
    assert stats.oom_kills >= 1
    if stats.memory_peak is not None:
        assert stats.memory_peak <= (32 << 20) + (1 << 20)


def test_limits_can_be_lowered_and_raised(cgroup, waiting):
    for limit in (64 << 20, 32 << 20, 128 << 20):  # v1 must order memory and memsw writes
        cgroup.apply(Resources(memory_max=limit, swap_max=0))


def test_pids_limit_refuses_forks_and_counts_them(cgroup, waiting):
    cgroup.apply(Resources(pids_max=4))
    forker = waiting(
        "import os, time\n"
        "for _ in range(10):\n"
        "    try: os.fork() or time.sleep(30)\n"
        "    except BlockingIOError: pass\n"
    )
    cgroup.add(forker.pid)
    go(forker)
    deadline = time.monotonic() + 10
    while cgroup.stats().pids_limit_hits == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = cgroup.stats()
    assert stats.pids_limit_hits >= 1
    assert stats.pids_current <= 4


def test_cpu_quota_throttles_a_spinning_process(cgroup, waiting):
    cgroup.apply(Resources(cpu_max=0.1))
    spinner = waiting(
        "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass"
    )
    cgroup.add(spinner.pid)
    go(spinner)
    spinner.wait(timeout=30)
    stats = cgroup.stats()
    assert stats.cpu_throttled_periods > 0
    assert stats.cpu_periods >= stats.cpu_throttled_periods


def test_freeze_stops_processes_and_thaw_resumes_them(cgroup, waiting):
    spinner = waiting("while True: pass")
    cgroup.add(spinner.pid)
    go(spinner)
    cgroup.freeze()
    assert cgroup.is_frozen()
    used = cgroup.stats().cpu_usage_us
    time.sleep(0.3)
    assert cgroup.stats().cpu_usage_us - used < 20_000  # no real progress while frozen
    cgroup.thaw()
    assert not cgroup.is_frozen()
    assert state_of(spinner.pid) in {"R", "S"}
    spinner.kill()
    spinner.wait()


def test_kill_takes_every_process_including_children(cgroup, waiting):
    parent = waiting(
        "import os, time\n"
        "for _ in range(5):\n"
        "    if os.fork() == 0: time.sleep(60)\n"
        "time.sleep(60)\n"
    )
    cgroup.add(parent.pid)
    go(parent)
    deadline = time.monotonic() + 10
    while len(cgroup.pids()) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(cgroup.pids()) == 6
    cgroup.kill()
    assert cgroup.pids() == []
    assert parent.wait(timeout=5) == -9


def test_kill_tree_takes_a_process_and_its_descendants_only(cgroup, waiting):
    tree = waiting(
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()  # its own session: no process group reaches it\n"
        "    if os.fork() == 0: time.sleep(60)\n"
        "    time.sleep(60)\n"
        "time.sleep(60)\n"
    )
    bystander = waiting("import time; time.sleep(60)")
    for process in (tree, bystander):
        cgroup.add(process.pid)
        go(process)
    deadline = time.monotonic() + 10
    while len(cgroup.pids()) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(cgroup.pids()) == 4
    assert cgroup.kill_tree(tree.pid) == 3
    assert tree.wait(timeout=5) == -9
    deadline = time.monotonic() + 5
    while cgroup.pids() != [bystander.pid] and time.monotonic() < deadline:
        time.sleep(0.02)  # the grandchildren, orphaned, are reaped by init
    assert cgroup.pids() == [bystander.pid]
    assert cgroup.kill_tree(12345678) == 0  # not in the cgroup: nothing


def test_delete_and_parent_cleanup_leave_nothing(manager):
    name = f"{PARENT}/{uuid.uuid4().hex[:12]}"
    cgroup = manager.cgroup(name)
    cgroup.create()
    assert manager.children(PARENT) == [name]
    cgroup.delete()
    manager.remove_if_empty(PARENT)
    assert not cgroup.exists()
    assert manager.children(PARENT) == []
    roots = {*manager.layout.v1.values(), manager.layout.unified} - {None}
    assert [root / PARENT for root in roots if (root / PARENT).exists()] == []
