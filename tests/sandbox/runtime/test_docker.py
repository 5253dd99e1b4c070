"""Docker-specific behaviour that needs no engine: how a dead one is reported."""

import gc
import warnings

import docker
import pytest
import trio

from sandbox.runtime import ContainerState, DockerRuntime, RuntimeUnavailableError
from sandbox.runtime._docker import DockerContainer


async def test_waiting_on_a_dead_engine_fails_at_once_instead_of_polling_forever(tmp_path):
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/gone.sock", version="1.41")
    runtime = DockerRuntime(client, tmp_path / "state")
    container = DockerContainer(runtime, "sb-test", 1_000_000)
    container._handle = client.containers.prepare_model({"Id": "0" * 64})
    container.state = ContainerState.RUNNING
    with trio.fail_after(10), pytest.raises(RuntimeUnavailableError, match="went away"):
        await container.wait()
    await runtime.aclose()
    # The SDK leaves the socket of its failed connect for the garbage collector.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
