"""Choosing a runtime: auto's order, and each refusal saying why."""

import json
import logging
import os
import shutil
import subprocess

import pytest

from sandbox.cgroups import CgroupManager, CgroupMode
from sandbox.oci.rootfs import HostLayout, build_rootfs
from sandbox.oci.spec import ProcessSpec, build_config
from sandbox.policy import RuntimeName, builtin_policy
from sandbox.runtime import (
    OciRuntime,
    RuntimeUnavailableError,
    Stdio,
    open_runtime,
    runtime_problem,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runtimes need root")

HYBRID = CgroupManager().mode is not CgroupMode.V2


async def test_auto_picks_runc_first_and_says_why(state_dir, caplog):
    caplog.set_level(logging.INFO, logger="agentos.sandbox.runtime")
    runtime = open_runtime(RuntimeName.AUTO, state_dir)
    assert isinstance(runtime, OciRuntime)
    assert runtime.name == "runc"
    assert "runtime auto: chose runc (it is the first choice)" in caplog.text


@pytest.mark.skipif(not (HYBRID and shutil.which("crun")), reason="needs crun on a hybrid host")
def test_crun_is_refused_on_hybrid_hosts_with_the_reason(state_dir):
    problem = runtime_problem(RuntimeName.CRUN, CgroupManager())
    assert "crun does not support hybrid cgroup hosts" in problem
    with pytest.raises(RuntimeUnavailableError, match="crun: crun does not support hybrid"):
        open_runtime(RuntimeName.CRUN, state_dir)
    # The refusal is not a guess: crun itself fails here.
    host = HostLayout.detect()
    build_rootfs(state_dir / "rootfs", host, uid=1_000_001, gid=1_000_001, hostname="sandbox")
    config = build_config(
        cgroup="agentos-probe/sb-crun-probe", process=ProcessSpec(["true"]),
        policy=builtin_policy(), uid=1_000_001, gid=1_000_001, host=host,
        cgroup_mode=CgroupManager().mode,
    )  # fmt: skip
    (state_dir / "config.json").write_text(json.dumps(config))
    root = ["crun", "--root", str(state_dir / "crun")]
    result = subprocess.run(
        [*root, "run", "--bundle", str(state_dir), "sb-crun-probe"],
        capture_output=True,
        text=True,
        check=False,
    )
    subprocess.run([*root, "delete", "-f", "sb-crun-probe"], capture_output=True, check=False)
    assert result.returncode != 0
    assert "hybrid mode not supported" in result.stderr


def test_an_unreachable_docker_engine_is_named(state_dir):
    url = f"unix://{state_dir}/no-docker.sock"
    with pytest.raises(RuntimeUnavailableError, match="no Docker Engine answers at unix://"):
        open_runtime(RuntimeName.DOCKER, state_dir, docker_url=url)


def test_auto_lists_every_candidates_problem(state_dir, monkeypatch):
    monkeypatch.setenv("PATH", str(state_dir))  # no runc, no crun on this PATH
    monkeypatch.setenv("DOCKER_HOST", f"unix://{state_dir}/none.sock")
    with pytest.raises(RuntimeUnavailableError) as info:
        open_runtime(RuntimeName.AUTO, state_dir)
    message = str(info.value)
    assert "runc: runc is not installed" in message
    assert "crun: crun is not installed" in message
    assert "docker: no Docker Engine answers" in message


@pytest.mark.v2vm
async def test_runc_and_crun_sharing_a_state_dir_keep_to_their_own(state_dir, policy):
    cgroups = CgroupManager()
    problems = [runtime_problem(name, cgroups) for name in (RuntimeName.RUNC, RuntimeName.CRUN)]
    if any(problems):
        pytest.skip(f"needs both runc and crun: {'; '.join(p for p in problems if p)}")
    runc = open_runtime(RuntimeName.RUNC, state_dir)
    crun = open_runtime(RuntimeName.CRUN, state_dir)
    theirs = await crun.create(ProcessSpec(["sleep", "60"]), policy, stdio=Stdio())
    try:
        await theirs.start()
        assert await runc.reconcile() == []  # crun's sandbox is no orphan of runc's
        assert theirs.cgroup.exists()
        assert (await theirs.stats()).pids_current >= 1
    finally:
        await theirs.delete()
    assert await crun.reconcile() == []
