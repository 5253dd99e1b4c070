"""net.*: real sockets held by the kernel and real HTTP, against local servers only, for
processes whose policies allow (or do not allow) the destinations."""

import contextlib
import functools
import socket

import pytest
import trio

from kernel.abi import CATALOG, ErrorCode, SyscallError, SyscallPermissionError
from kernel.client import open_kernel_client
from kernel.core import Kernel
from kernel.net import MAX_REQUESTS_PER_PROCESS, MAX_SOCKETS_PER_PROCESS
from sandbox.capabilities import Capability
from tests.kernel._calls import ADMIN, as_process, code_of, code_when, dispatch
from tests.kernel.net._server import start_http


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


# ---------------------------------------------------------------- every call, allowed and denied

NET_SPECS = [spec for spec in CATALOG if spec.category == "net"]


def test_the_network_calls_are_these_thirteen():
    assert {spec.name for spec in NET_SPECS} == {
        "net.socket", "net.bind", "net.listen", "net.accept", "net.connect", "net.send",
        "net.recv", "net.send_to", "net.recv_from", "net.close", "net.set_opt", "net.get_opt",
        "net.request",
    }  # fmt: skip
    binding = {spec.name for spec in NET_SPECS if spec.capability is Capability.BIND_PORT}
    assert binding == {"net.bind", "net.listen"}
    assert all(
        spec.capability in (Capability.BIND_PORT, Capability.NETWORK_ACCESS) for spec in NET_SPECS
    )


@pytest.mark.parametrize("spec", NET_SPECS, ids=lambda spec: spec.name)
async def test_each_call_is_refused_without_its_capability_and_counted(kernel, spec):
    others = sorted(c.value for c in set(Capability) - {spec.capability})
    _, app = await process(kernel, "almost", allowlist("127.0.0.0/8"), *others)
    assert await code_of(kernel, app, spec.name, sock=1) == ErrorCode.EPERM
    text = kernel.metrics.render().decode()
    label = f'call="{spec.name}",capability="{spec.capability.value}"'
    assert f"agentos_syscall_denials_total{{{label}}} 1.0" in text


@pytest.fixture
async def pair(kernel, echo_port):
    """A process with a socket connected to the echo server, and a stranger."""
    _, app = await process(kernel, "owner", allowlist(f"127.0.0.1/32:{echo_port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    await dispatch(kernel, app, "net.connect", sock=sock, host="127.0.0.1", port=echo_port)
    _, stranger = await process(kernel, "stranger", allowlist("127.0.0.0/8"), *NET)
    return app, sock, stranger


SOCKET_CALLS = {
    "net.bind": {"port": 0},
    "net.listen": {},
    "net.accept": {"timeout": 0},
    "net.connect": {"host": "127.0.0.1", "port": 9},
    "net.send": {"data": b"x"},
    "net.recv": {"timeout": 0},
    "net.send_to": {"data": b"x", "host": "127.0.0.1", "port": 9},
    "net.recv_from": {"timeout": 0},
    "net.set_opt": {"option": "keep_alive", "value": True},
    "net.get_opt": {"option": "keep_alive"},
    "net.close": {},
}


@pytest.mark.parametrize("call", SOCKET_CALLS)
async def test_another_processs_socket_is_ebadf_to_every_call(kernel, pair, call):
    app, sock, stranger = pair
    assert await code_of(kernel, stranger, call, sock=sock, **SOCKET_CALLS[call]) == (
        ErrorCode.EBADF
    )
    assert (await dispatch(kernel, app, "net.send", sock=sock, data=b"still"))["sent"] == 5
    assert (await dispatch(kernel, app, "net.recv", sock=sock, timeout=5))["data"] == b"still"


async def test_the_administrators_use_any_socket_and_bind_anywhere(kernel, pair):
    app, sock, _ = pair
    assert (await dispatch(kernel, ADMIN, "net.get_opt", sock=sock, option="no_delay")) == {
        "option": "no_delay", "value": 0,
    }  # fmt: skip
    mine = (await dispatch(kernel, ADMIN, "net.socket"))["sock"]
    bound = await dispatch(kernel, ADMIN, "net.bind", sock=mine, host="0.0.0.0", port=0)  # noqa: S104
    assert bound["host"] == "0.0.0.0"  # noqa: S104
    await dispatch(kernel, ADMIN, "net.close", sock=mine)
    assert await code_of(kernel, app, "net.close", sock=mine) == ErrorCode.EBADF


async def test_refused_destinations_are_counted_as_denials(kernel, echo_port):
    _, app = await process(kernel, "counted", allowlist(f"127.0.0.1/32:{echo_port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    with pytest.raises(SyscallPermissionError) as refused:
        await dispatch(kernel, app, "net.connect", sock=sock, host="127.0.0.1", port=1)
    assert refused.value.message == "127.0.0.1:1: not in the process's allowlist"
    text = kernel.metrics.render().decode()
    assert 'agentos_syscall_denials_total{call="net.connect",capability="ownership"} 1.0' in text


# ---------------------------------------------------------------- sockets that work


async def failure(kernel, caller, call, **args):
    """The code ``call`` fails with, or None if it succeeds."""
    try:
        await dispatch(kernel, caller, call, **args)
    except SyscallError as exc:
        return exc.code
    return None


async def test_ipv6_loopback_end_to_end(kernel):
    _, app = await process(kernel, "six", allowlist("::1/128"), *NET)
    server = (await dispatch(kernel, app, "net.socket", family="inet6"))["sock"]
    bound = await dispatch(kernel, app, "net.bind", sock=server, port=0)  # the family's loopback
    assert bound["host"] == "::1"
    await dispatch(kernel, app, "net.listen", sock=server, backlog=4)
    client = (await dispatch(kernel, app, "net.socket", family="inet6"))["sock"]
    made = await dispatch(kernel, app, "net.connect", sock=client, host="::1", port=bound["port"])
    taken = await dispatch(kernel, app, "net.accept", sock=server, timeout=5)
    assert taken["peer"] == made["local"]
    await dispatch(kernel, app, "net.send", sock=client, data=b"over six")
    assert (await dispatch(kernel, app, "net.recv", sock=taken["sock"], timeout=5))["data"] == (
        b"over six"
    )
    other = await code_of(kernel, app, "net.connect", sock=client, host="::2", port=1)
    assert other == ErrorCode.EPERM
    ipv4 = await code_of(kernel, app, "net.connect", sock=client, host="127.0.0.1", port=1)
    assert ipv4 == ErrorCode.EINVAL  # not an address of the socket's family


async def test_a_connected_datagram_socket_sends_and_receives(kernel, nursery):
    server = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]

    async def reflect():
        data, peer = await server.recvfrom(2048)
        await server.sendto(data[::-1], peer)

    nursery.start_soon(reflect)
    _, app = await process(kernel, "udp2", allowlist(f"127.0.0.1/32:{port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket", type="dgram"))["sock"]
    assert await code_of(kernel, app, "net.send", sock=sock, data=b"x") == ErrorCode.ENOTCONN
    await dispatch(kernel, app, "net.connect", sock=sock, host="127.0.0.1", port=port)
    await dispatch(kernel, app, "net.send", sock=sock, data=b"abc")
    assert (await dispatch(kernel, app, "net.recv", sock=sock, timeout=5))["data"] == b"cba"
    server.close()


async def test_misuse_is_einval_and_busy_addresses_eaddrinuse(kernel):
    _, app = await process(kernel, "misuse", allowlist("127.0.0.1/32"), *NET)
    stream = (await dispatch(kernel, app, "net.socket"))["sock"]
    dgram = (await dispatch(kernel, app, "net.socket", type="dgram"))["sock"]
    einval = [
        ("net.listen", {"sock": stream}),  # not bound: it would listen on every address
        ("net.listen", {"sock": dgram}),
        ("net.accept", {"sock": stream, "timeout": 0}),
        ("net.send_to", {"sock": stream, "data": b"x", "host": "127.0.0.1", "port": 9}),
        ("net.recv_from", {"sock": stream, "timeout": 0}),
        ("net.connect", {"sock": stream, "host": "127.0.0.1", "port": 9, "timeout": 0}),
        ("net.recv", {"sock": stream, "size": (1 << 20) + 1}),
        ("net.send", {"sock": stream, "data": b"x" * ((1 << 20) + 1)}),
        ("net.set_opt", {"sock": stream, "option": "recv_buffer", "value": True}),
        ("net.set_opt", {"sock": stream, "option": "recv_buffer", "value": 10}),
        ("net.set_opt", {"sock": stream, "option": "broadcast", "value": 1}),
        ("net.socket", {"family": "unix"}),
    ]
    for call, args in einval:
        assert await code_of(kernel, app, call, **args) == ErrorCode.EINVAL, call
    bound = await dispatch(kernel, app, "net.bind", sock=stream, port=0)
    assert await code_of(kernel, app, "net.bind", sock=stream, port=0) == ErrorCode.EINVAL
    other = (await dispatch(kernel, app, "net.socket"))["sock"]
    busy = await code_of(kernel, app, "net.bind", sock=other, port=bound["port"])
    assert busy == ErrorCode.EADDRINUSE
    flag = await dispatch(kernel, app, "net.set_opt", sock=other, option="reuse_addr", value=True)
    assert flag == {"option": "reuse_addr", "value": 1}


async def test_waiting_calls_honour_their_timeouts(kernel):
    _, app = await process(kernel, "patient", allowlist("127.0.0.1/32"), *NET)
    listener = (await dispatch(kernel, app, "net.socket"))["sock"]
    bound = await dispatch(kernel, app, "net.bind", sock=listener, port=0)
    await dispatch(kernel, app, "net.listen", sock=listener, backlog=1)
    assert await code_of(kernel, app, "net.accept", sock=listener, timeout=0.1) == (
        ErrorCode.ETIMEDOUT
    )
    # A peer that never reads: sends fill its window, then would wait.
    client = (await dispatch(kernel, app, "net.socket"))["sock"]
    await dispatch(kernel, app, "net.set_opt", sock=client, option="send_buffer", value=4096)
    await dispatch(kernel, app, "net.connect", sock=client, host="127.0.0.1", port=bound["port"])
    chunk = b"x" * (1 << 20)
    for wait, code in ((0, ErrorCode.EAGAIN), (0.1, ErrorCode.ETIMEDOUT)):
        with trio.fail_after(10):
            # What the network stack drains meanwhile, sends take; then they cannot.
            while (failed := await failure(kernel, app, "net.send", sock=client, data=chunk,
                                           timeout=wait)) is None:  # fmt: skip
                pass
        assert failed == code


async def test_a_connect_that_times_out_leaves_a_socket_only_close_takes(kernel):
    _, app = await process(kernel, "hasty", allowlist("127.0.0.1/32"), *NET)
    listener = (await dispatch(kernel, app, "net.socket"))["sock"]
    port = (await dispatch(kernel, app, "net.bind", sock=listener, port=0))["port"]
    await dispatch(kernel, app, "net.listen", sock=listener, backlog=1)  # never accepts
    for _ in range(8):  # the backlog fills, then connections wait for room
        sock = (await dispatch(kernel, app, "net.socket"))["sock"]
        args = {"sock": sock, "host": "127.0.0.1", "port": port, "timeout": 0.2}
        if (failed := await failure(kernel, app, "net.connect", **args)) is not None:
            break
    else:
        pytest.fail("the listener's backlog never filled")
    assert failed == ErrorCode.ETIMEDOUT
    assert await code_of(kernel, app, "net.send", sock=sock, data=b"x") == ErrorCode.EBADF
    await dispatch(kernel, app, "net.close", sock=sock)


# ---------------------------------------------------------------- limits and cleanup


async def test_the_kernels_own_limit_is_enfile(kernel):
    _, app = await process(kernel, "crowd", allowlist("127.0.0.1/32"), *NET)
    kernel.sockets.total = len(kernel.sockets) + 2
    for _ in range(2):
        await dispatch(kernel, app, "net.socket")
    assert await code_of(kernel, app, "net.socket") == ErrorCode.ENFILE
    assert await code_of(kernel, ADMIN, "net.socket") == ErrorCode.ENFILE


async def test_a_connection_past_the_limit_is_refused_and_shut(kernel):
    pid, app = await process(kernel, "full", allowlist("127.0.0.1/32"), *NET)
    before = len(kernel.sockets)
    listener = (await dispatch(kernel, app, "net.socket"))["sock"]
    port = (await dispatch(kernel, app, "net.bind", sock=listener, port=0))["port"]
    await dispatch(kernel, app, "net.listen", sock=listener)
    for _ in range(MAX_SOCKETS_PER_PROCESS - 1):
        await dispatch(kernel, app, "net.socket")
    client = await trio.open_tcp_stream("127.0.0.1", port)
    assert await code_of(kernel, app, "net.accept", sock=listener, timeout=5) == ErrorCode.EMFILE
    with trio.fail_after(5), contextlib.suppress(trio.BrokenResourceError):  # reset: an end too
        assert await client.receive_some(10) == b""
    await client.aclose()
    assert len(kernel.sockets) == before + MAX_SOCKETS_PER_PROCESS
    await dispatch(kernel, ADMIN, "proc.kill", pid=pid)
    assert len(kernel.sockets) == before
    assert pid not in kernel.sockets.holders()


async def test_calls_waiting_on_a_socket_end_when_it_closes_or_its_process_exits(kernel, echo_port):
    pid, app = await process(kernel, "closing", allowlist(f"127.0.0.1/32:{echo_port}"), *NET)
    sock = (await dispatch(kernel, app, "net.socket"))["sock"]
    await dispatch(kernel, app, "net.connect", sock=sock, host="127.0.0.1", port=echo_port)

    async def close():
        await dispatch(kernel, app, "net.close", sock=sock)

    assert await code_when(kernel, app, "net.recv", close, sock=sock) == ErrorCode.EBADF
    before = len(kernel.sockets)
    other = (await dispatch(kernel, app, "net.socket", type="dgram"))["sock"]
    await dispatch(kernel, app, "net.bind", sock=other, port=0)

    async def leave():
        await dispatch(kernel, ADMIN, "proc.kill", pid=pid)

    assert await code_when(kernel, app, "net.recv_from", leave, sock=other) == ErrorCode.EBADF
    assert len(kernel.sockets) == before  # the one it opened went with it
    assert kernel.sockets.owned_by(pid) == []


# ---------------------------------------------------------------- through the kernel socket


@pytest.fixture
async def admin(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        yield client


async def spawn_over(admin, name, network):
    policy = {"name": name, "network": network, "capabilities": list(NET)}
    await admin.call("policy.put", {"policy": policy})
    return (await admin.call("proc.spawn", {"name": name, "policy": name}))["pid"]


def outcome(running_kernel, call, result):
    text = running_kernel.kernel.metrics.render().decode()
    return f'agentos_syscalls_total{{call="{call}",outcome="{result}"}} 1.0' in text


async def test_sys_cancel_ends_a_waiting_receive_and_the_socket_goes_on(
    admin, running_kernel, echo_port
):
    pid = await spawn_over(admin, "cancelled", allowlist(f"127.0.0.1/32:{echo_port}"))
    sock = (await admin.call("net.socket", {}, as_pid=pid))["sock"]
    args = {"sock": sock, "host": "127.0.0.1", "port": echo_port}
    await admin.call("net.connect", args, as_pid=pid)
    with trio.move_on_after(0.2) as waited:  # the client sends sys.cancel as it stops waiting
        await admin.call("net.recv", {"sock": sock}, as_pid=pid)
    assert waited.cancelled_caught
    with trio.fail_after(5):
        while not outcome(running_kernel, "net.recv", "cancelled"):
            await trio.sleep(0.01)
    await admin.call("net.send", {"sock": sock, "data": b"on"}, as_pid=pid)
    got = await admin.call("net.recv", {"sock": sock, "timeout": 5}, as_pid=pid)
    assert got["data"] == b"on"


async def test_sys_cancel_ends_a_request_and_its_connection(admin, running_kernel, nursery):
    server = await start_http(nursery)
    pid = await spawn_over(admin, "webby", allowlist(f"127.0.0.1/32:{server.port}"))
    with trio.move_on_after(0.3):
        url = f"http://127.0.0.1:{server.port}/slow"
        await admin.call("net.request", {"url": url}, as_pid=pid)
    with trio.fail_after(5):
        await server.client_left.wait()
        while running_kernel.kernel.http.in_flight():
            await trio.sleep(0.01)
    assert outcome(running_kernel, "net.request", "cancelled")


async def test_a_process_has_at_most_eight_requests_in_flight(kernel, nursery):
    server = await start_http(nursery)
    _, app = await process(kernel, "eager", allowlist(f"127.0.0.1/32:{server.port}"), *NET)
    slow = f"http://127.0.0.1:{server.port}/slow"
    async with trio.open_nursery() as waiting:
        for _ in range(MAX_REQUESTS_PER_PROCESS):
            waiting.start_soon(functools.partial(dispatch, kernel, app, "net.request", url=slow))
        with trio.fail_after(5):
            while kernel.http.in_flight() < MAX_REQUESTS_PER_PROCESS:
                await trio.sleep(0.01)
        assert await code_of(kernel, app, "net.request", url=slow) == ErrorCode.EAGAIN
        waiting.cancel_scope.cancel()
    assert kernel.http.in_flight() == 0
