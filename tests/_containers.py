"""Fixtures for tests that make real containers (a pytest plugin: see tests/conftest.py)."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors
import pytest

from sandbox.cgroups import CgroupManager
from sandbox.oci.spec import ProcessSpec
from sandbox.policy import Policy, RuntimeName, builtin_policy
from sandbox.run import run_in_sandbox
from sandbox.runtime import DockerRuntime, open_runtime, runtime_problem
from sandbox.testing import private_dockerd

LOOP_DEVICES = Path("/dev/loop-control").exists()


@pytest.fixture
def state_dir():
    path = Path(tempfile.mkdtemp(prefix="aos-sb-", dir="/tmp"))
    yield path
    # Whatever a test did, nothing of it may stay mounted or on disk.
    mounted = [str(p) for p in path.glob("**/data") if p.is_mount()]  # any runtime's
    if mounted:
        subprocess.run(["umount", "-R", *mounted], check=False)
    shutil.rmtree(path, ignore_errors=True)


TEST_RUNTIMES = os.environ.get("AGENTOS_TEST_RUNTIMES", "runc,docker").split(",")


def _install_docker():
    """As root on Debian, install the engine if it is missing (make test does it too)."""
    if shutil.which("dockerd") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "docker.io"],
            check=False, capture_output=True, timeout=900, env=env,
        )  # fmt: skip


@pytest.fixture(scope="session")
def dockerd():
    """A Docker Engine of the tests' own, on a private socket, for the whole session."""
    if os.geteuid() != 0:
        pytest.skip("a Docker Engine of our own needs root")
    _install_docker()
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed and could not be (apt-get install docker.io)")
    with private_dockerd() as url:
        yield url
        client = docker.DockerClient(base_url=url, timeout=10)
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()


def successor_of(runtime, state_dir):
    """A fresh runtime of the same kind on ``state_dir``, as a restarted owner would open."""
    if isinstance(runtime, DockerRuntime):
        return DockerRuntime(runtime.client, state_dir)
    return open_runtime(RuntimeName(runtime.name), state_dir)


@pytest.fixture(params=TEST_RUNTIMES)
async def runtime(request, state_dir):
    name = request.param
    if os.geteuid() != 0:
        pytest.skip("sandboxes need root")
    docker_url = request.getfixturevalue("dockerd") if name == "docker" else None
    problem = runtime_problem(RuntimeName(name), CgroupManager(), docker_url=docker_url)
    if problem:
        pytest.skip(f"{name}: {problem}")
    rt = open_runtime(RuntimeName(name), state_dir, docker_url=docker_url)
    yield rt
    leftovers = await rt.reconcile()
    await rt.aclose()
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
