"""The config.json of a sandbox: the hardening holds whatever the policy says."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.cgroups import CgroupMode
from sandbox.errors import InvalidArgumentError
from sandbox.oci.rootfs import HostLayout, build_rootfs, host_mounts
from sandbox.oci.spec import MASKED_PATHS, READONLY_PATHS, ProcessSpec, build_config
from sandbox.policy import BUILTIN_POLICIES, Limits, Mount, Policy

MERGED = HostLayout(
    root=Path("/"),
    links=(("bin", "usr/bin"), ("lib", "usr/lib")),
    dirs=(),
    files=("etc/ld.so.cache",),
)
SPLIT = HostLayout(root=Path("/host"), links=(), dirs=("bin", "lib", "lib64"), files=())


def config_for(
    policy, *, mode=CgroupMode.HYBRID, host=MERGED, data=Path("/srv/data"), uid=1_000_123
):
    return build_config(
        cgroup="agentos-test/sb-test", process=ProcessSpec(["/bin/true"]), policy=policy,
        uid=uid, gid=uid, host=host, cgroup_mode=mode, data=data,
    )  # fmt: skip


limits = st.builds(
    Limits,
    memory=st.integers(4 << 20, 8 << 30),
    cpus=st.floats(0.01, 64),
    pids=st.integers(1, 65536),
    nofile=st.integers(16, 1 << 20),
    tmpfs=st.integers(1 << 20, 1 << 30),
)
policies = st.builds(
    Policy,
    name=st.just("p"),
    capabilities=st.frozensets(st.sampled_from(sorted(BUILTIN_POLICIES["network"].capabilities))),
    limits=limits,
)


@settings(max_examples=50)
@given(policies)
def test_hardening_holds_for_any_policy(policy):
    config = config_for(policy)
    process, linux = config["process"], config["linux"]
    assert process["user"]["uid"] > 0
    assert process["user"]["gid"] > 0
    assert process["user"]["additionalGids"] == []
    assert process["noNewPrivileges"] is True
    assert process["oomScoreAdj"] == 500  # under host memory pressure, sandboxes go first
    assert process["args"] == ["/usr/bin/tini-static", "--", "/bin/true"]
    assert all(caps == [] for caps in process["capabilities"].values())
    assert len(process["capabilities"]) == 5
    assert config["root"]["readonly"] is True
    assert {n["type"] for n in linux["namespaces"]} == {
        "pid",
        "mount",
        "ipc",
        "uts",
        "network",
        "cgroup",
    }
    assert all("path" not in n for n in linux["namespaces"])  # fresh ones, never the host's
    assert set(MASKED_PATHS) <= set(linux["maskedPaths"])
    assert set(READONLY_PATHS) <= set(linux["readonlyPaths"])
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert linux["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert "ro" in mounts["/sys"]["options"]
    assert "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert "ro" in mounts["/usr"]["options"]
    assert f"size={policy.limits.tmpfs}" in mounts["/tmp"]["options"]
    rlimits = {r["type"]: r for r in process["rlimits"]}
    assert rlimits["RLIMIT_NOFILE"]["hard"] == policy.limits.nofile
    resources = linux["resources"]
    assert resources["memory"]["limit"] == resources["memory"]["swap"] == policy.limits.memory
    assert resources["pids"]["limit"] == policy.limits.pids


def test_memory_high_maps_to_each_cgroup_version():
    policy = Policy(name="p", limits=Limits(memory="256M", memory_high="192M"))
    v2 = config_for(policy, mode=CgroupMode.V2)["linux"]["resources"]
    v1 = config_for(policy, mode=CgroupMode.HYBRID)["linux"]["resources"]
    assert v2["unified"] == {"memory.high": str(192 << 20)}
    assert "reservation" not in v2["memory"]
    assert v1["memory"]["reservation"] == 192 << 20
    assert "unified" not in v1


def test_policy_mounts_are_read_only_and_data_is_writable():
    policy = Policy(name="p", mounts=[Mount(source="/opt/models", destination="/models")])
    mounts = {m["destination"]: m for m in config_for(policy)["mounts"]}
    assert mounts["/models"]["source"] == "/opt/models"
    assert "ro" in mounts["/models"]["options"]
    assert "rw" in mounts["/data"]["options"]
    assert "nosuid" in mounts["/data"]["options"]
    assert config_for(policy)["process"]["cwd"] == "/data"
    without = config_for(policy, data=None)
    assert "/data" not in {m["destination"] for m in without["mounts"]}
    assert without["process"]["cwd"] == "/tmp"


def test_split_usr_hosts_get_their_top_level_dirs_bound_read_only():
    mounts = {
        m["destination"]: m for m in config_for(BUILTIN_POLICIES["standard"], host=SPLIT)["mounts"]
    }
    for name in ("/bin", "/lib", "/lib64", "/usr"):
        assert mounts[name]["source"].startswith("/host/")
        assert "ro" in mounts[name]["options"]


def test_root_is_never_the_sandbox_user():
    with pytest.raises(InvalidArgumentError, match="never runs as root"):
        config_for(BUILTIN_POLICIES["standard"], uid=0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"argv": []}, "needs a command"),
        ({"argv": ["a\0b"]}, "NUL"),
        ({"argv": ["x"], "env": {"1BAD": "v"}}, "invalid environment variable"),
        ({"argv": ["x"], "env": {"OK": "a\0"}}, "invalid environment variable"),
        ({"argv": ["x"], "cwd": "relative"}, "must be absolute"),
    ],
)
def test_process_specs_are_validated(spec, message):
    with pytest.raises(InvalidArgumentError, match=message):
        ProcessSpec(**spec)


def test_environment_defaults_and_overrides():
    process = ProcessSpec(["env"], env={"LANG": "en_US.UTF-8", "APP": "notes"})
    config = build_config(
        cgroup="agentos-test/sb-x", process=process, policy=BUILTIN_POLICIES["standard"],
        uid=1_000_001, gid=1_000_001, host=MERGED, cgroup_mode=CgroupMode.V2,
    )  # fmt: skip
    env = dict(item.split("=", 1) for item in config["process"]["env"])
    assert env["LANG"] == "en_US.UTF-8"
    assert env["APP"] == "notes"
    assert env["PATH"].startswith("/usr/local/bin:/usr/bin")
    assert env["HOME"] == "/tmp"


def test_host_layout_detection(tmp_path):
    merged = tmp_path / "merged"
    (merged / "usr" / "bin").mkdir(parents=True)
    (merged / "bin").symlink_to("usr/bin")
    (merged / "etc").mkdir()
    (merged / "etc" / "ld.so.cache").write_text("")
    layout = HostLayout.detect(merged)
    assert layout.merged_usr
    assert layout.links == (("bin", "usr/bin"),)
    assert layout.files == ("etc/ld.so.cache",)
    split = tmp_path / "split"
    (split / "bin").mkdir(parents=True)
    (split / "lib").mkdir()
    layout = HostLayout.detect(split)
    assert not layout.merged_usr
    assert layout.dirs == ("bin", "lib")
    assert [m["destination"] for m in host_mounts(layout)] == ["/usr", "/bin", "/lib"]


def test_rootfs_holds_mount_points_links_and_a_private_etc(tmp_path):
    build_rootfs(tmp_path / "rootfs", MERGED, uid=1_000_042, gid=1_000_042, hostname="sandbox")
    root = tmp_path / "rootfs"
    assert (root / "bin").readlink() == Path("usr/bin")
    for name in ("proc", "dev", "sys", "tmp", "usr", "data", "etc"):
        assert (root / name).is_dir()
    assert "sandbox:x:1000042:1000042:" in (root / "etc" / "passwd").read_text()
    assert (root / "etc" / "ld.so.cache").is_file()  # a mount point for the host's cache
    assert (root / "etc" / "resolv.conf").read_text() == ""
