"""Fixtures for tests that make real containers (a pytest plugin: see tests/conftest.py)."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from sandbox.cgroups import CgroupManager
from sandbox.oci.spec import ProcessSpec
from sandbox.policy import Policy, RuntimeName, builtin_policy
from sandbox.run import run_in_sandbox
from sandbox.runtime import DockerRuntime, open_runtime, runtime_problem

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


TEST_RUNTIMES = os.environ.get("AGENTOS_TEST_RUNTIMES", "runc,docker").split(",")


def _answers(path):
    """Whether something accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


@pytest.fixture(scope="session")
def dockerd():
    """A Docker Engine of the tests' own, on a private socket; stopped and removed at the end.

    Bridge networking and iptables are off: it must leave the host's network alone, and
    sandboxes use network none.
    """
    binary = shutil.which("dockerd")
    if binary is None or os.geteuid() != 0:
        pytest.skip("dockerd is not installed (apt-get install docker.io) or not root")
    root = Path(tempfile.mkdtemp(prefix="aos-dockerd-", dir="/tmp"))
    url = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [binary, "--host", url, "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
         "--bridge", "none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _answers(root / "docker.sock"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "dockerd.log").read_text()[-2000:])
            time.sleep(0.2)
        client = docker.DockerClient(base_url=url, timeout=10)  # asks the version at once
        client.ping()
        yield url
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if line.split()[4].startswith(str(root))]  # fmt: skip
        for mountpoint in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mountpoint], check=False)
        shutil.rmtree(root, ignore_errors=True)


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
