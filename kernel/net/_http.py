"""HTTP requests the kernel makes for a process: every connection checked against its policy.

httpx builds the requests and their redirects (URLs resolved against the last one, the
method turned to GET where HTTP says so, ``Authorization`` dropped for another origin);
httpcore speaks HTTP/1.1 and TLS (with the URL's host name); the kernel supplies its
network backend, which resolves the host, checks each address against the process's
network policy and connects to the very address it checked. Each redirect hop is a new
request, so it is checked the same way. Bodies come as sent (the kernel asks for no
content coding), capped as they arrive; a process has a few requests in flight at most,
and all of them together hold a bounded number of bytes.
"""

from __future__ import annotations

import collections
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import trio

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallExhaustedError,
    SyscallInvalidArgumentError,
    SyscallTimeoutError,
    SyscallUnavailableError,
)
from kernel.abi.net import MAX_HTTP_BODY
from kernel.net._destinations import check_destination, check_reachable, resolve
from kernel.net._sockets import net_error
from sandbox.policy import NetworkPolicy

__all__ = [
    "MAX_HTTP_BUFFERED",
    "MAX_REDIRECTS",
    "MAX_REQUESTS_PER_PROCESS",
    "HttpClient",
    "HttpRequest",
    "HttpResponse",
]

MAX_REDIRECTS = 5
MAX_REQUESTS_PER_PROCESS = 8
"""Requests one process may have in flight at once (``EAGAIN`` past it)."""
MAX_HTTP_BUFFERED = 128 << 20
"""Response bytes all requests in flight may hold together (``ENOMEM`` past it)."""

_CLOSE_GRACE = 5.0
_SCHEMES = ("http", "https")
_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "agentos-kernel"}


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, and to the address it checked."""

    def __init__(self, network: NetworkPolicy | None) -> None:
        self._network = network
        self._inner = httpcore.TrioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        check_reachable(self._network, host)  # before the name is looked up
        refused: SyscallError | None = None
        failed: httpcore.ConnectError | None = None
        for address in await resolve(host, port, 0, trio.socket.SOCK_STREAM):
            try:
                check_destination(self._network, address, port)
            except SyscallError as exc:
                refused = refused or exc
                continue
            try:  # each allowed address in turn, as the name's order has them
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except httpcore.ConnectError as exc:
                failed = exc
        if failed is not None:
            raise failed
        assert refused is not None  # resolve() returns at least one address
        raise refused

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        msg = "the kernel's HTTP client does not reach Unix sockets"
        raise SyscallInvalidArgumentError(msg)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    """httpcore's response body as httpx reads it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


class _CheckedTransport(httpx.AsyncBaseTransport):
    """httpx's requests over an httpcore pool whose every connection is checked."""

    def __init__(self, network: NetworkPolicy | None, ssl_context: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=_CheckedBackend(network), max_connections=4
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status, headers=response.headers,
            stream=_ResponseStream(response.stream), extensions=response.extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self._pool.aclose()


@dataclass(frozen=True)
class HttpRequest:
    """What a process asks for.

    Attributes:
        timeout: seconds for the whole exchange, redirects included.
        max_bytes: the response body's cap.
        follow_redirects: follow up to :data:`MAX_REDIRECTS`, each hop checked.
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timeout: float = 30.0
    max_bytes: int = MAX_HTTP_BODY
    follow_redirects: bool = False


@dataclass(frozen=True)
class HttpResponse:
    """What a request got back."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    url: str


def _headers(pairs: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Header pairs as bytes: names ASCII, values Latin-1 (HTTP's own)."""
    try:
        return [(name.encode("ascii"), value.encode("latin-1")) for name, value in pairs]
    except UnicodeEncodeError as exc:
        msg = f"a header that HTTP cannot carry ({exc.object!r}): names ASCII, values Latin-1"
        raise SyscallInvalidArgumentError(msg) from None


def _cause(exc: BaseException) -> BaseException | None:
    """The TLS or OS error under an httpcore error, if there is one."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, OSError):  # ssl.SSLError among them
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unreachable(exc: httpcore.NetworkError, url: str) -> SyscallError:
    """A connection that could not be made, or broke, as its syscall error."""
    cause = _cause(exc)
    if isinstance(cause, ssl.SSLError):
        msg = f"{url}: TLS failed: {cause.reason or cause}"
        return SyscallUnavailableError(msg, code=ErrorCode.ECONNRESET)
    if isinstance(cause, OSError) and cause.errno is not None:
        return net_error(cause, url)
    connecting = isinstance(exc, httpcore.ConnectError)
    code = ErrorCode.ECONNREFUSED if connecting else ErrorCode.ECONNRESET
    return SyscallUnavailableError(f"{url}: {exc or type(exc).__name__}", code=code)


class HttpClient:
    """Makes HTTP requests for processes, each under its process's network policy.

    Args:
        per_process: requests one process may have in flight at once.
        budget: response bytes all requests in flight may hold together.
        ssl_context: whom TLS trusts (by default certifi's authorities, made when first
            needed).
    """

    def __init__(
        self,
        *,
        per_process: int = MAX_REQUESTS_PER_PROCESS,
        budget: int = MAX_HTTP_BUFFERED,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.per_process = per_process
        self.budget = budget
        self._ssl_context = ssl_context
        self._in_flight: collections.Counter[int] = collections.Counter()
        self.buffered = 0
        """Response bytes the requests in flight hold now."""

    def in_flight(self, pid: int | None = None) -> int:
        """Requests in flight (of ``pid``, or all)."""
        return self._in_flight[pid] if pid is not None else self._in_flight.total()

    async def request(
        self, owner: int, network: NetworkPolicy | None, request: HttpRequest
    ) -> HttpResponse:
        """Make ``request`` for process ``owner`` under ``network`` (None: anywhere).

        Raises:
            SyscallPermissionError: EPERM, a destination the policy does not allow.
            SyscallTimeoutError: ETIMEDOUT, the whole exchange took longer than its timeout.
            SyscallUnavailableError: EAGAIN (the process has its most requests in flight),
                ECONNREFUSED (nothing listens), ECONNRESET (the connection broke, the
                server's answer was not HTTP, its TLS failed, or it redirected too often).
            SyscallInvalidArgumentError: EMSGSIZE, the body passed ``max_bytes``; EINVAL,
                a URL or a header HTTP cannot carry.
            SyscallNotFoundError: ENOENT, the host name does not resolve.
            SyscallExhaustedError: ENOMEM, the requests in flight hold the budget's bytes.
        """
        url = request.url
        if self._in_flight[owner] >= self.per_process:
            msg = f"process {owner} has {self.per_process} requests in flight already"
            raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN)
        self._in_flight[owner] += 1
        try:
            with trio.fail_after(request.timeout):
                return await self._exchange(network, request)
        except trio.TooSlowError:
            msg = f"{url}: no complete answer within {request.timeout} s"
            raise SyscallTimeoutError(msg) from None
        except httpcore.TimeoutException as exc:
            msg = f"{url}: timed out ({type(exc).__name__})"
            raise SyscallTimeoutError(msg) from None
        except httpcore.NetworkError as exc:
            raise _unreachable(exc, url) from None
        except (httpcore.RemoteProtocolError, httpx.RemoteProtocolError) as exc:
            msg = f"{url}: the server's answer is not valid HTTP: {exc}"
            raise SyscallUnavailableError(msg, code=ErrorCode.ECONNRESET) from None
        except (
            httpx.InvalidURL, httpcore.UnsupportedProtocol, httpcore.LocalProtocolError,
        ) as exc:  # fmt: skip
            raise SyscallInvalidArgumentError(f"{url}: {exc}") from None
        finally:
            self._in_flight[owner] -= 1
            if not self._in_flight[owner]:
                del self._in_flight[owner]

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
        return self._ssl_context

    async def _exchange(self, network: NetworkPolicy | None, asked: HttpRequest) -> HttpResponse:
        client = httpx.AsyncClient(
            transport=_CheckedTransport(network, self._context()), trust_env=False,
            timeout=asked.timeout, headers=_HEADERS,
        )  # fmt: skip
        try:
            request = client.build_request(
                asked.method, asked.url, headers=_headers(asked.headers), content=asked.body or None
            )
            response = await client.send(request, stream=True)
            try:
                hops = 0
                while asked.follow_redirects and (hop := response.next_request) is not None:
                    if hop.url.scheme not in _SCHEMES:
                        break  # not followed: the redirect itself is the answer
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        msg = f"{asked.url}: more than {MAX_REDIRECTS} redirects"
                        raise SyscallUnavailableError(msg, code=ErrorCode.ECONNRESET)
                    await response.aclose()  # unread: its connection is not reused
                    response = await client.send(hop, stream=True)
                data = await self._read(response, asked.max_bytes)
            finally:
                await response.aclose()
        finally:
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await client.aclose()
        return HttpResponse(
            response.status_code,
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw],
            data,
            str(response.url),
        )

    async def _read(self, response: httpx.Response, max_bytes: int) -> bytes:
        """The body, within ``max_bytes`` and the budget (held against it while read)."""
        received = bytearray()
        refusal: SyscallError | None = None
        try:
            # Past a limit the read is cancelled rather than left: the cancellation
            # unwinds the stream's nested generators from inside, where leaving them at a
            # yield would not (trio warns of generators collected unfinished).
            with trio.CancelScope() as cut:
                async for chunk in response.aiter_raw():
                    if refusal is not None:
                        continue
                    if len(received) + len(chunk) > max_bytes:
                        msg = f"{response.url}: the response body passed {max_bytes} bytes"
                        refusal = SyscallInvalidArgumentError(msg, code=ErrorCode.EMSGSIZE)
                    elif self.buffered + len(chunk) > self.budget:
                        msg = f"the kernel's HTTP responses hold {self.budget} bytes already"
                        refusal = SyscallExhaustedError(msg, code=ErrorCode.ENOMEM)
                    if refusal is not None:
                        cut.cancel()
                        continue
                    received.extend(chunk)
                    self.buffered += len(chunk)
        finally:
            self.buffered -= len(received)
        if refusal is not None:
            raise refusal
        return bytes(received)
