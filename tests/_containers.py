"""Fixtures for tests that make real containers (a pytest plugin: see tests/conftest.py)."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from sandbox.cgroups import CgroupManager
from sandbox.oci.spec import ProcessSpec
from sandbox.policy import Policy, RuntimeName, builtin_policy
from sandbox.run import run_in_sandbox
from sandbox.runtime import open_runtime, runtime_problem

LOOP_DEVICES = Path("/dev/loop-control").exists()


@pytest.fixture
def state_dir():
    path = Path(tempfile.mkdtemp(prefix="aos-sb-", dir="/tmp"))
    yield path
    # Whatever a test did, nothing of it may stay mounted or on disk.
    mounted = [str(p) for p in path.glob("bundles/*/data") if p.is_mount()]
    if mounted:
        subprocess.run(["umount", "-R", *mounted], check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["runc"])
async def runtime(request, state_dir):
    name = request.param
    problem = (
        runtime_problem(RuntimeName(name), CgroupManager()) if os.geteuid() == 0 else "needs root"
    )
    if problem:
        pytest.skip(f"{name}: {problem}")
    rt = open_runtime(RuntimeName(name), state_dir)
    yield rt
    leftovers = await rt.reconcile()
    assert leftovers == [], f"the test left sandboxes behind: {leftovers}"


@pytest.fixture
def policy() -> Policy:
    """The standard policy, with its disk quota where loop devices exist."""
    standard = builtin_policy("standard")
    if LOOP_DEVICES:
        return standard
    return standard.model_copy(update={"limits": standard.limits.model_copy(update={"disk": None})})


class Captured:
    def __init__(self):
        self.stdout = bytearray()
        self.stderr = bytearray()

    async def out(self, data):
        self.stdout.extend(data)

    async def err(self, data):
        self.stderr.extend(data)


@pytest.fixture
def run(runtime, policy):
    """Run a command to completion; returns (result, captured output)."""

    async def run_it(argv, *, policy=policy, **kwargs):
        captured = Captured()
        result = await run_in_sandbox(
            runtime, ProcessSpec(argv), policy, stdout=captured.out, stderr=captured.err, **kwargs
        )
        return result, captured

    return run_it
