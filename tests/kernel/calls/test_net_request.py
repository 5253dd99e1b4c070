"""net.request: HTTP through the kernel to a local server, each connection (redirects
included) checked against the process's allowlist."""

import contextlib
import functools

import pytest
import trio

from kernel.abi import ErrorCode
from kernel.abi.net import NET_REQUEST, NetRequestArgs
from kernel.client import open_kernel_client
from kernel.core import Kernel
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch


@pytest.fixture
async def kernel():
    """A kernel whose sockets are all closed after the test."""
    kernel = Kernel()
    yield kernel
    kernel.sockets.close_all()


async def respond(stream, *, other_port):
    """A small HTTP/1.1 server: one request per connection."""
    async with stream:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            request += chunk
        head, _, rest = request.partition(b"\r\n\r\n")
        method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")), 0,
        )  # fmt: skip
        while len(rest) < length:
            rest += await stream.receive_some(4096)
        status, headers, body = "200 OK", [], b""
        if path == "/hello":
            body = f"hello {method} {rest.decode()}".encode()
            headers.append("X-Seen: yes")
        elif path == "/big":
            body = b"x" * (2 << 20)
        elif path == "/slow":
            await trio.sleep(10)
        elif path == "/hop":
            status, headers = "302 Found", ["Location: /hello"]
        elif path == "/away":  # to another address of the host: not in the allowlist
            status, headers = "302 Found", [f"Location: http://127.0.0.2:{other_port}/hello"]
        else:
            status = "404 Not Found"
        lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
        with contextlib.suppress(trio.BrokenResourceError):  # a client that stopped reading
            await stream.send_all(("\r\n".join(lines + headers) + "\r\n\r\n").encode() + body)


@pytest.fixture
async def server(nursery):
    """Two servers: one on 127.0.0.1 (allowed), one on 127.0.0.2 (not)."""
    (other,) = await nursery.start(
        functools.partial(trio.serve_tcp, functools.partial(respond, other_port=0), 0,
                          host="127.0.0.2")
    )  # fmt: skip
    other_port = other.socket.getsockname()[1]
    (main,) = await nursery.start(
        functools.partial(trio.serve_tcp, functools.partial(respond, other_port=other_port), 0,
                          host="127.0.0.1")
    )  # fmt: skip
    return main.socket.getsockname()[1], other_port


async def client(kernel, port):
    network = {"mode": "allowlist", "allow": [f"127.0.0.1/32:{port}"]}
    await dispatch(kernel, ADMIN, "policy.put", policy={"name": "web", "network": network})
    info = await dispatch(kernel, ADMIN, "proc.spawn", name="web", policy="web")
    return as_process(info["pid"], "network_access")


async def test_a_request_the_allowlist_admits(kernel, server):
    port, _ = server
    app = await client(kernel, port)
    got = await dispatch(
        kernel, app, "net.request", method="POST", url=f"http://localhost:{port}/hello",
        body=b"payload", headers=[("Content-Type", "text/plain")],
    )  # fmt: skip
    assert (got["status"], got["body"]) == (200, b"hello POST payload")
    assert ("X-Seen", "yes") in [tuple(h) for h in got["headers"]]
    missing = await dispatch(kernel, app, "net.request", url=f"http://127.0.0.1:{port}/none")
    assert missing["status"] == 404


async def test_redirects_are_followed_only_where_allowed(kernel, server):
    port, _ = server
    app = await client(kernel, port)
    raw = await dispatch(kernel, app, "net.request", url=f"http://127.0.0.1:{port}/hop")
    assert raw["status"] == 302
    hopped = await dispatch(
        kernel, app, "net.request", url=f"http://127.0.0.1:{port}/hop", follow_redirects=True
    )
    assert (hopped["status"], hopped["url"]) == (200, f"http://127.0.0.1:{port}/hello")
    away = await code_of(
        kernel, app, "net.request", url=f"http://127.0.0.1:{port}/away", follow_redirects=True
    )
    assert away == ErrorCode.EPERM  # the second hop's address is not in the allowlist


async def test_denied_refused_oversized_and_slow_requests(kernel, server):
    port, other_port = server
    app = await client(kernel, port)
    url = f"http://127.0.0.2:{other_port}/hello"
    assert await code_of(kernel, app, "net.request", url=url) == ErrorCode.EPERM
    admin = await dispatch(kernel, ADMIN, "net.request", url=url)  # the administrator: anywhere
    assert admin["status"] == 200
    big = f"http://127.0.0.1:{port}/big"
    assert await code_of(kernel, app, "net.request", url=big, max_bytes=1 << 20) == (
        ErrorCode.EMSGSIZE
    )
    slow = f"http://127.0.0.1:{port}/slow"
    assert await code_of(kernel, app, "net.request", url=slow, timeout=0.3) == ErrorCode.ETIMEDOUT
    assert await code_of(kernel, app, "net.request", url="ftp://127.0.0.1/") == ErrorCode.EINVAL


async def test_a_server_that_is_not_there_is_econnrefused(kernel):
    app = await client(kernel, 9)
    code = await code_of(kernel, app, "net.request", url="http://127.0.0.1:9/")
    assert code == ErrorCode.ECONNREFUSED


async def test_the_typed_client_reads_a_response_off_the_wire(server, running_kernel):
    port, _ = server
    async with open_kernel_client(running_kernel.socket) as client:
        args = NetRequestArgs(
            method="POST", url=f"http://127.0.0.1:{port}/hello", body=b"w",
            headers=[("Accept", "text/plain")],
        )  # fmt: skip
        response = await client.invoke(NET_REQUEST, args)
    assert (response.status, response.body) == (200, b"hello POST w")
    assert ("X-Seen", "yes") in response.headers
