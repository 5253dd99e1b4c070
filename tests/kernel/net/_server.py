"""A small local HTTP/1.1 server (one request per connection) for the kernel's HTTP client."""

import contextlib
import functools
import json
import ssl
import subprocess
import urllib.parse
from dataclasses import dataclass, field

import trio


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalHttp:
    """What the server saw, and the routes it answers:

    /echo: 200, a JSON of what it got; /big?n=N: N bytes; /slow: answers never (notes when
    the client goes); /to?url=U[&status=S]: a redirect to U; /loop: a redirect to itself;
    /rel/a: a redirect to "b"; /garbage: not HTTP; anything else 404.
    """

    seen: list[Seen] = field(default_factory=list)
    client_left: trio.Event = field(default_factory=trio.Event)
    host: str = "127.0.0.1"
    port: int = 0

    async def handle(self, stream):
        async with stream:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._answer(stream)

    async def _answer(self, stream):
        seen = await self._request(stream)
        if seen is None:
            return
        self.seen.append(seen)
        url = urllib.parse.urlsplit(seen.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/slow":
            if await stream.receive_some(1) == b"":  # nothing comes but the client's end
                self.client_left.set()
            return
        if url.path == "/garbage":
            await stream.send_all(b"this is not HTTP\r\n\r\n")
            return
        status, extra, content = "200 OK", [], b""
        if url.path == "/echo":
            fields = {"method": seen.method, "path": seen.path, "headers": seen.headers}
            content = json.dumps(fields | {"body": seen.body.decode()}).encode()
            extra.append("Content-Type: application/json")
        elif url.path == "/big":
            content = b"x" * int(query["n"])
        elif url.path in REDIRECTS:
            status, extra = "302 Found", [f"Location: {REDIRECTS[url.path]}"]
        elif url.path == "/to":
            status, extra = query.get("status", "302") + " Moved", [f"Location: {query['url']}"]
        else:
            status = "404 Not Found"
        lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(content)}", "Connection: close"]
        await stream.send_all(("\r\n".join(lines + extra) + "\r\n\r\n").encode() + content)

    @staticmethod
    async def _request(stream):
        """One request, or None if the client left first."""
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return None
            request += chunk
        head, _, body = request.partition(b"\r\n\r\n")
        first, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = first.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        while len(body) < int(headers.get("content-length", 0)):
            body += await stream.receive_some(65536)
        return Seen(method, target, headers, body)


REDIRECTS = {"/loop": "/loop", "/rel/a": "b?x=1"}


async def start_http(nursery, host="127.0.0.1", ssl_context=None):
    """A :class:`LocalHttp` serving on ``host`` (TLS with ``ssl_context``), its port set."""
    server = LocalHttp(host=host)
    if ssl_context is None:
        serve = functools.partial(trio.serve_tcp, server.handle, 0, host=host)
    else:
        serve = functools.partial(trio.serve_ssl_over_tcp, server.handle, 0, ssl_context, host=host)
    (listener,) = await nursery.start(serve)
    sock = listener.socket if ssl_context is None else listener.transport_listener.socket
    server.port = sock.getsockname()[1]
    return server


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certificates(directory):
    """A test authority and a server certificate it signed for ``localhost`` alone.

    Returns:
        (client context trusting the authority, server context with the certificate).
    """
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=AgentOS test authority",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", *curve, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    (directory / "leaf.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
        cwd=directory,
    )  # fmt: skip
    client = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(directory / "leaf.pem", directory / "leaf.key")
    return client, server
