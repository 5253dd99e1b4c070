"""The cgroup code on fake cgroupfs trees: detection, limit writes, statistics parsing."""

import pytest

from sandbox.cgroups import (
    CgroupError,
    CgroupManager,
    CgroupMode,
    Resources,
    V1Cgroup,
    V2Cgroup,
    detect_layout,
    weight_to_shares,
)
from sandbox.errors import InvalidArgumentError


def files(directory, **contents):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        (directory / name.replace("__", ".")).write_text(text)


@pytest.fixture
def v2_root(tmp_path):
    root = tmp_path / "v2"
    files(root, cgroup__controllers="cpuset cpu io memory hugetlb pids", cgroup__subtree_control="")
    return root


@pytest.fixture
def v1_root(tmp_path):
    root = tmp_path / "v1"
    for controller in ("memory", "pids", "freezer", "cpuset", "devices"):
        (root / controller).mkdir(parents=True)
    (root / "cpu,cpuacct").mkdir()
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    return root


def test_detects_pure_v2(v2_root):
    layout = detect_layout(v2_root)
    assert (layout.mode, layout.unified) == (CgroupMode.V2, v2_root)


def test_detects_v1_with_joined_cpu_controllers(v1_root):
    layout = detect_layout(v1_root)
    assert layout.mode is CgroupMode.V1
    assert layout.v1["cpu"] == layout.v1["cpuacct"] == v1_root / "cpu,cpuacct"
    assert layout.v1["memory"] == v1_root / "memory"
    assert "cpuset" not in layout.v1  # not ours to manage


def test_detects_hybrid(v1_root):
    files(v1_root / "unified", cgroup__controllers="hugetlb")
    layout = detect_layout(v1_root)
    assert (layout.mode, layout.unified) == (CgroupMode.HYBRID, v1_root / "unified")
    assert isinstance(CgroupManager(v1_root).cgroup("agentos/x"), V1Cgroup)


def test_nothing_mounted_is_an_error(tmp_path):
    with pytest.raises(CgroupError, match="no cgroup controllers"):
        detect_layout(tmp_path)


@pytest.mark.parametrize("name", ["", "/agentos/x", "agentos/../etc", "../x"])
def test_cgroup_names_stay_inside_the_hierarchy(v2_root, name):
    with pytest.raises(CgroupError, match="invalid cgroup name"):
        CgroupManager(v2_root).cgroup(name)


def test_v2_create_delegates_controllers_down_to_the_leaf(v2_root):
    # The kernel gives a new directory its cgroup.controllers; the fake plays that part.
    files(v2_root / "agentos", cgroup__controllers="cpu memory pids", cgroup__subtree_control="")
    cgroup = CgroupManager(v2_root).cgroup("agentos/c1")
    assert isinstance(cgroup, V2Cgroup)
    cgroup.create()
    assert (v2_root / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (v2_root / "agentos" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert cgroup.exists()


def test_v2_limits_become_file_writes(v2_root):
    (v2_root / "agentos" / "c1").mkdir(parents=True)
    cgroup = V2Cgroup(v2_root, "agentos/c1")
    cgroup.apply(
        Resources(
            memory_max=64 << 20,
            memory_high=48 << 20,
            swap_max=0,
            cpu_max=0.5,
            cpu_weight=200,
            pids_max=32,
        )
    )
    written = {p.name: p.read_text() for p in (v2_root / "agentos" / "c1").iterdir()}
    assert written == {
        "memory.max": str(64 << 20),
        "memory.high": str(48 << 20),
        "memory.swap.max": "0",
        "cpu.max": "50000 100000",
        "cpu.weight": "200",
        "pids.max": "32",
    }


def test_v2_stats_parse_the_kernel_files(v2_root):
    leaf = v2_root / "c"
    files(
        leaf,
        memory__current="1048576\n",
        memory__peak="2097152\n",
        memory__events="low 0\nhigh 3\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n",
        pids__current="4\n",
        pids__peak="6\n",
        pids__events="max 9\n",
        cpu__stat="usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\n"
        "nr_throttled 4\nthrottled_usec 700\n",
    )
    stats = V2Cgroup(v2_root, "c").stats()
    assert (stats.memory_current, stats.memory_peak, stats.oom_kills) == (1 << 20, 2 << 20, 1)
    assert (stats.pids_current, stats.pids_peak, stats.pids_limit_hits) == (4, 6, 9)
    assert (stats.cpu_usage_us, stats.cpu_periods) == (1500, 10)
    assert (stats.cpu_throttled_periods, stats.cpu_throttled_us) == (4, 700)
    (leaf / "memory.peak").unlink()  # kernels before 5.19
    assert V2Cgroup(v2_root, "c").stats().memory_peak is None


def test_v1_limits_become_file_writes(v1_root):
    layout = detect_layout(v1_root)
    cgroup = V1Cgroup(layout.v1, "agentos/c1")
    cgroup.create()
    (v1_root / "memory" / "agentos" / "c1" / "memory.memsw.limit_in_bytes").write_text(
        str(2**63 - 1)
    )
    cgroup.apply(
        Resources(memory_max=64 << 20, swap_max=0, cpu_max=1.5, cpu_weight=100, pids_max=8)
    )
    memory = v1_root / "memory" / "agentos" / "c1"
    cpu = v1_root / "cpu,cpuacct" / "agentos" / "c1"
    assert (memory / "memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(64 << 20)
    assert (cpu / "cpu.cfs_quota_us").read_text() == "150000"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (cpu / "cpu.shares").read_text() == str(weight_to_shares(100))
    assert (v1_root / "pids" / "agentos" / "c1" / "pids.max").read_text() == "8"


def test_v1_stats_parse_the_kernel_files(v1_root):
    layout = detect_layout(v1_root)
    files(
        v1_root / "memory" / "c",
        memory__usage_in_bytes="4096\n",
        memory__max_usage_in_bytes="8192\n",
        memory__oom_control="oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    files(v1_root / "pids" / "c", pids__current="3\n", pids__events="max 5\n")
    files(
        v1_root / "cpu,cpuacct" / "c",
        cpuacct__usage="2500000\n",
        cpu__stat="nr_periods 20\nnr_throttled 6\nthrottled_time 3000000\n",
    )
    stats = V1Cgroup(layout.v1, "c").stats()
    assert (stats.memory_current, stats.memory_peak, stats.oom_kills) == (4096, 8192, 2)
    assert (stats.pids_current, stats.pids_limit_hits) == (3, 5)
    assert (stats.cpu_usage_us, stats.cpu_periods) == (2500, 20)
    assert (stats.cpu_throttled_periods, stats.cpu_throttled_us) == (6, 3000)


def test_weight_to_shares_matches_runc():
    assert [weight_to_shares(w) for w in (1, 100, 10_000)] == [2, 2597, 262_144]


@pytest.mark.parametrize(
    "bad",
    [
        {"memory_max": -1},
        {"cpu_max": 0},
        {"cpu_weight": 0},
        {"cpu_weight": 10_001},
        {"pids_max": -5},
    ],
)
def test_impossible_limits_are_refused(bad):
    with pytest.raises(InvalidArgumentError):
        Resources(**bad)


def test_a_refused_write_names_the_file(v2_root):
    cgroup = V2Cgroup(v2_root, "missing/leaf")
    with pytest.raises(CgroupError, match=r"cannot write .*missing/leaf/pids\.max"):
        cgroup.apply(Resources(pids_max=1))
