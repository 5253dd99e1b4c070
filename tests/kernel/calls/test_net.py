"""net.*: real sockets held by the kernel and real HTTP, against local servers only, for
processes whose policies allow (or do not allow) the destinations."""

import functools
import socket

import pytest
import trio

from kernel.abi import ErrorCode
from kernel.core import Kernel
from kernel.net import MAX_SOCKETS_PER_PROCESS
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch


@pytest.fixture
async def kernel():
    """A kernel whose sockets are all closed after the test."""
    kernel = Kernel()
    yield kernel
    kernel.sockets.close_all()


NET = ("network_access", "bind_port")


async def echo(stream):
    async with stream:
        async for data in stream:
            await stream.send_all(data)


@pytest.fixture
async def echo_port(nursery):
    (listener,) = await nursery.start(functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
    return listener.socket.getsockname()[1]


@pytest.fixture
async def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def process(kernel, name, network, *grants):
    """A process under a policy of its own whose network is ``network``."""
    await dispatch(
        kernel, ADMIN, "policy.put", policy={"name": name, "network": network, "limits": {}}
    )
    info = await dispatch(kernel, ADMIN, "proc.spawn", name=name, policy=name)
    return info["pid"], as_process(info["pid"], *grants)


def allowlist(*rules):
    return {"mode": "allowlist", "allow": list(rules)}


async def test_a_connection_the_allowlist_admits(kernel, echo_port, closed_port):
    _, app = await process(kernel, "pinned", allowlist(f"127.0.0.1/32:{echo_port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    made = await dispatch(kernel, app, "net.connect", sock=sock, host="localhost", port=echo_port)
    assert made["peer"] == {"host": "127.0.0.1", "port": echo_port}
    assert (await dispatch(kernel, app, "net.send", sock=sock, data=b"\x00hello"))["sent"] == 6
    got = await dispatch(kernel, app, "net.recv", sock=sock, size=6, timeout=5)
    assert got["data"] == b"\x00hello"
    other = (await dispatch(kernel, app, "net.socket"))["sock"]
    refused = await code_of(
        kernel, app, "net.connect", sock=other, host="127.0.0.1", port=closed_port
    )
    assert refused == ErrorCode.EPERM  # the port is not in its allowlist
    await dispatch(kernel, app, "net.close", sock=sock)
    assert await code_of(kernel, app, "net.send", sock=sock, data=b"x") == ErrorCode.EBADF


async def test_no_network_mode_and_no_capability_are_refused(kernel, echo_port):
    _, closed = await process(kernel, "closed", {"mode": "none"}, *NET)
    sock = (await dispatch(kernel, closed, "net.socket"))["sock"]
    code = await code_of(kernel, closed, "net.connect", sock=sock, host="127.0.0.1", port=echo_port)
    assert code == ErrorCode.EPERM
    _, egress = await process(kernel, "public", {"mode": "egress"}, *NET)
    sock = (await dispatch(kernel, egress, "net.socket"))["sock"]
    code = await code_of(kernel, egress, "net.connect", sock=sock, host="127.0.0.1", port=echo_port)
    assert code == ErrorCode.EPERM  # egress is for public addresses, not the host's loopback
    pid, _ = await process(kernel, "bare", allowlist("127.0.0.0/8"))
    assert await code_of(kernel, as_process(pid), "net.socket") == ErrorCode.EPERM
    assert await code_of(kernel, as_process(pid), "net.request", url="http://127.0.0.1/") == (
        ErrorCode.EPERM
    )


async def test_a_process_listens_on_loopback_and_accepts(kernel, echo_port):
    _, app = await process(kernel, "server", allowlist("127.0.0.1/32"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    for host, port in (("0.0.0.0", 0), ("127.0.0.1", 80)):  # noqa: S104
        assert await code_of(kernel, app, "net.bind", sock=sock, host=host, port=port) == (
            ErrorCode.EACCES
        )
    bound = await dispatch(kernel, app, "net.bind", sock=sock, host="127.0.0.1", port=0)
    assert bound["port"] >= 1024
    await dispatch(kernel, app, "net.listen", sock=sock)
    assert await code_of(kernel, app, "net.accept", sock=sock, timeout=0) == ErrorCode.EAGAIN
    client = await trio.open_tcp_stream("127.0.0.1", bound["port"])
    taken = await dispatch(kernel, app, "net.accept", sock=sock, timeout=5)
    assert taken["local"]["port"] == bound["port"]
    await client.send_all(b"ping")
    got = await dispatch(kernel, app, "net.recv", sock=taken["sock"], timeout=5)
    assert got["data"] == b"ping"
    await client.aclose()
    assert (await dispatch(kernel, app, "net.recv", sock=taken["sock"], timeout=5))["data"] == b""
    _, listener_less = await process(kernel, "nobind", allowlist("127.0.0.1/32"), "network_access")
    other = (await dispatch(kernel, listener_less, "net.socket"))["sock"]
    assert await code_of(kernel, listener_less, "net.bind", sock=other, port=0) == ErrorCode.EPERM


async def test_datagrams_go_where_the_allowlist_says(kernel, nursery):
    server = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]

    async def reflect():
        data, peer = await server.recvfrom(2048)
        await server.sendto(data.upper(), peer)

    nursery.start_soon(reflect)
    _, app = await process(kernel, "udp", allowlist(f"127.0.0.1/32:{port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket", type="dgram"))["sock"]
    sent = await dispatch(
        kernel, app, "net.send_to", sock=sock, data=b"hi", host="127.0.0.1", port=port
    )
    assert sent["sent"] == 2
    got = await dispatch(kernel, app, "net.recv_from", sock=sock, timeout=5)
    assert got == {"data": b"HI", "peer": {"host": "127.0.0.1", "port": port}}
    code = await code_of(kernel, app, "net.send_to", sock=sock, data=b"x", host="127.0.0.1", port=9)
    assert code == ErrorCode.EPERM
    server.close()


async def test_waits_options_ownership_and_limits(kernel, echo_port):
    _, app = await process(kernel, "opts", allowlist(f"127.0.0.1/32:{echo_port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    await dispatch(kernel, app, "net.connect", sock=sock, host="127.0.0.1", port=echo_port)
    assert await code_of(kernel, app, "net.recv", sock=sock, timeout=0) == ErrorCode.EAGAIN
    assert await code_of(kernel, app, "net.recv", sock=sock, timeout=0.1) == ErrorCode.ETIMEDOUT
    set_ = await dispatch(kernel, app, "net.set_opt", sock=sock, option="no_delay", value=1)
    assert set_["value"] == 1
    got = await dispatch(kernel, app, "net.get_opt", sock=sock, option="keep_alive")
    assert got == {"option": "keep_alive", "value": 0}
    buffer = await dispatch(
        kernel, app, "net.set_opt", sock=sock, option="recv_buffer", value=65536
    )
    assert buffer["value"] >= 65536  # Linux keeps twice what is asked
    assert await code_of(kernel, app, "net.set_opt", sock=sock, option="keep_alive", value=2) == (
        ErrorCode.EINVAL
    )
    dgram = (await dispatch(kernel, app, "net.socket", type="dgram"))["sock"]
    assert await code_of(kernel, app, "net.set_opt", sock=dgram, option="no_delay", value=1) == (
        ErrorCode.EINVAL
    )
    _, stranger = await process(kernel, "stranger", allowlist("127.0.0.1/32"), *NET)
    assert await code_of(kernel, stranger, "net.recv", sock=sock, timeout=0) == ErrorCode.EBADF
    assert await code_of(kernel, stranger, "net.close", sock=sock) == ErrorCode.EBADF
    held = len(kernel.sockets)
    for _ in range(MAX_SOCKETS_PER_PROCESS - 2):
        await dispatch(kernel, app, "net.socket")
    assert await code_of(kernel, app, "net.socket") == ErrorCode.EMFILE
    assert len(kernel.sockets) == held + MAX_SOCKETS_PER_PROCESS - 2


async def test_a_processs_sockets_close_when_it_exits(kernel, echo_port):
    before = len(kernel.sockets)
    pid, app = await process(kernel, "leaver", allowlist(f"127.0.0.1/32:{echo_port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    await dispatch(kernel, app, "net.connect", sock=sock, host="127.0.0.1", port=echo_port)
    listener = (await dispatch(kernel, app, "net.socket"))["sock"]
    await dispatch(kernel, app, "net.bind", sock=listener, port=0)
    assert len(kernel.sockets) == before + 2
    await dispatch(kernel, ADMIN, "proc.kill", pid=pid)
    assert len(kernel.sockets) == before


async def test_a_blocked_receive_ends_when_the_call_is_cancelled(kernel, echo_port):
    _, app = await process(kernel, "waiter", allowlist(f"127.0.0.1/32:{echo_port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    await dispatch(kernel, app, "net.connect", sock=sock, host="127.0.0.1", port=echo_port)
    with trio.move_on_after(0.2) as waited:
        await dispatch(kernel, app, "net.recv", sock=sock)  # waits for ever, unless cancelled
    assert waited.cancelled_caught
    await dispatch(kernel, app, "net.send", sock=sock, data=b"after")  # the socket is fine
    assert (await dispatch(kernel, app, "net.recv", sock=sock, timeout=5))["data"] == b"after"
