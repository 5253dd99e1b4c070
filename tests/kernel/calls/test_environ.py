"""sys.env_*, sys.cwd_* and time.* over a real admin socket, acting for processes."""

import os
import time

import pytest
import trio

from kernel.abi import ErrorCode, SyscallError
from kernel.client import open_kernel_client


@pytest.fixture
async def kernel(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        yield client


async def process(kernel, name, capabilities=("system_info", "time_access", "spawn_process")):
    info = await kernel.call("proc.spawn", {"name": name, "capabilities": list(capabilities)})
    return info["pid"]


async def child_of(kernel, parent):
    args = {"name": "kid", "capabilities": ["system_info"]}
    return (await kernel.call("proc.spawn", args, as_pid=parent))["pid"]


async def code_of(call):
    with pytest.raises(SyscallError) as info:
        await call
    return info.value.code


async def test_each_process_has_its_own_environment_which_its_children_inherit(kernel):
    a, b = await process(kernel, "a"), await process(kernel, "b")
    assert (await kernel.call("sys.env_set", {"name": "X", "value": "1"}, as_pid=a))["env"] == {
        "X": "1"
    }
    assert (await kernel.call("sys.env_get", {}, as_pid=b))["env"] == {}
    child = (
        await kernel.call("proc.spawn", {"name": "kid", "capabilities": ["system_info"]}, as_pid=a)
    )["pid"]
    assert (await kernel.call("sys.env_get", {"name": "X"}, as_pid=child))["env"] == {"X": "1"}
    await kernel.call("sys.env_set", {"name": "X", "value": None}, as_pid=a)
    assert (await kernel.call("sys.env_get", {"name": "X"}, as_pid=a))["env"] == {}
    assert (await kernel.call("sys.env_get", {"name": "X"}, as_pid=child))["env"] == {"X": "1"}


async def test_the_kernels_own_environment_is_never_given_out(kernel, monkeypatch):
    monkeypatch.setenv("AGENTOS_TEST_SECRET", "the kernel's alone")
    assert "AGENTOS_TEST_SECRET" in os.environ
    assert await code_of(kernel.call("sys.env_get")) == ErrorCode.EINVAL  # the kernel itself
    a = await process(kernel, "a")
    assert "AGENTOS_TEST_SECRET" not in (await kernel.call("sys.env_get", as_pid=a))["env"]


async def test_environment_names_values_and_size_are_bounded(kernel):
    a = await process(kernel, "a")
    bad = [{"name": "1X", "value": "v"}, {"name": "X", "value": "a\0b"}, {"name": "X"}]
    for args in bad:
        assert await code_of(kernel.call("sys.env_set", args, as_pid=a)) == ErrorCode.EINVAL
    for i in range(256):
        await kernel.call("sys.env_set", {"name": f"V{i}", "value": "x"}, as_pid=a)
    full = kernel.call("sys.env_set", {"name": "ONE_MORE", "value": "x"}, as_pid=a)
    assert await code_of(full) == ErrorCode.ENOMEM
    await kernel.call("sys.env_set", {"name": "V0", "value": "y"}, as_pid=a)  # replacing is fine


async def test_the_working_directory_is_per_process_and_an_existing_directory(kernel):
    a = await process(kernel, "a", ["system_info", "spawn_process", "list_directory:/tmp"])
    assert (await kernel.call("sys.cwd_get", as_pid=a))["cwd"] == "/"
    await kernel.call("fs.mkdir", {"path": "/tmp/x/y", "parents": True})
    await kernel.call("fs.write", {"path": "/tmp/x/file", "data": b""})
    moves = [("tmp", "/tmp"), ("./x/", "/tmp/x"), ("y", "/tmp/x/y"), ("/tmp/x", "/tmp/x")]
    for path, expected in moves:
        assert (await kernel.call("sys.cwd_set", {"path": path}, as_pid=a))["cwd"] == expected
    refused = [
        ("..", ErrorCode.EINVAL),
        ("/tmp/x/file", ErrorCode.ENOTDIR),
        ("/tmp/nowhere", ErrorCode.ENOENT),
        ("/storage", ErrorCode.EPERM),  # no file capability there: not even its existence
    ]
    for path, code in refused:
        assert await code_of(kernel.call("sys.cwd_set", {"path": path}, as_pid=a)) == code
    assert (await kernel.call("fs.cwd_get", as_pid=a))["cwd"] == "/tmp/x"  # one and the same
    child = (
        await kernel.call("proc.spawn", {"name": "kid", "capabilities": ["system_info"]}, as_pid=a)
    )["pid"]
    assert (await kernel.call("sys.cwd_get", as_pid=child))["cwd"] == "/tmp/x"
    other = await process(kernel, "b")
    assert (await kernel.call("sys.cwd_get", as_pid=other))["cwd"] == "/"


async def test_time_calls_tell_the_clock_and_sleep_without_blocking_others(kernel):
    a = await process(kernel, "a")
    now = await kernel.call("time.now", as_pid=a)
    assert abs(now["unix"] - time.time()) < 5
    assert now["iso"].endswith("+00:00")
    uptime = await kernel.call("time.uptime", as_pid=a)
    assert uptime["kernel_seconds"] > 0
    assert 0 <= uptime["process_seconds"] < 60
    pinged = trio.Event()

    async def sleeper():
        result = await kernel.call("time.sleep", {"seconds": 0.5}, as_pid=a)
        assert pinged.is_set()  # the ping on the same connection came back meanwhile
        assert result["slept"] >= 0.5

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.sleep(0.05)
        await kernel.call("sys.ping")
        pinged.set()
    too_long = kernel.call("time.sleep", {"seconds": 61}, as_pid=a)
    assert await code_of(too_long) == ErrorCode.EINVAL
    clockless = await process(kernel, "c", capabilities=["system_info"])
    assert await code_of(kernel.call("time.now", as_pid=clockless)) == ErrorCode.EPERM
