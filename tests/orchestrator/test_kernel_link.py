"""The web tier's kernel link survives kernels that misbehave."""

import os
import socket
import struct

import pytest
import trio

from kernel.client import abi
from orchestrator.kernel_link import KernelLink


async def serve_garbage(path, connections, *, task_status=trio.TASK_STATUS_IGNORED):
    """A 'kernel' that answers every connection with a frame header over any limit."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(os.fspath(path))
    sock.listen(16)

    async def handle(stream):
        connections.append(stream)
        async with stream:
            await stream.send_all(struct.pack(">I", 2**31))
            await trio.sleep_forever()

    await trio.serve_listeners(handle, [trio.SocketListener(sock)], task_status=task_status)


async def test_a_misbehaving_kernel_does_not_bring_down_the_link(nursery, data_dir):
    path = data_dir / "evil.sock"
    connections = []
    await nursery.start(serve_garbage, path, connections)
    link = KernelLink(path, min_backoff=0.01, max_backoff=0.02)
    await nursery.start(link.run)
    with trio.fail_after(10):
        while len(connections) < 3:  # it keeps reconnecting rather than dying
            await trio.sleep(0.01)
    assert not link.connected
    with pytest.raises(abi.SyscallUnavailableError, match="not connected"):
        await link.call("sys.ping")


async def test_calls_fail_fast_while_no_kernel_serves(nursery, data_dir):
    link = KernelLink(data_dir / "nobody.sock", min_backoff=0.01, max_backoff=0.02)
    await nursery.start(link.run)
    with trio.fail_after(1), pytest.raises(abi.SyscallUnavailableError):
        await link.invoke(abi.system.SYS_INFO)
