"""HTTP requests the kernel makes for a process: every connection checked against its policy.

httpcore does the HTTP (1.1, TLS with the URL's host name); the kernel supplies its
network backend, which resolves the host, checks each address against the process's
network policy and connects to the address it checked. Redirects, when followed, are new
requests, so each hop is checked the same way. Bodies are capped as they arrive.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import trio

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallInvalidArgumentError,
    SyscallTimeoutError,
    SyscallUnavailableError,
)
from kernel.net._destinations import check_destination, resolve
from sandbox.policy import NetworkPolicy

__all__ = ["MAX_REDIRECTS", "HttpResponse", "request"]

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


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
        addresses = await resolve(host, port, 0, trio.socket.SOCK_STREAM)
        refused: SyscallError | None = None
        for address in addresses:
            try:
                check_destination(self._network, address, port)
            except SyscallError as exc:
                refused = exc
                continue
            return await self._inner.connect_tcp(
                str(address), port, timeout=timeout, local_address=local_address,
                socket_options=socket_options,
            )  # fmt: skip
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


class HttpResponse:
    """What a request got back."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes, url: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url


def _redirect_target(url: httpcore.URL, location: bytes) -> str:
    base = f"{url.scheme.decode()}://{url.host.decode()}"
    if url.port is not None:
        base += f":{url.port}"
    target = location.decode("latin-1")
    if target.startswith(("http://", "https://")):
        return target
    if target.startswith("/"):
        return base + target
    path = url.target.decode("latin-1").split("?", 1)[0]
    return base + path.rsplit("/", 1)[0] + "/" + target


async def _once(
    pool: httpcore.AsyncConnectionPool,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    max_bytes: int,
    seconds: float,
) -> HttpResponse:
    extensions = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), seconds)}
    async with pool.stream(method, url, headers=headers, content=body, extensions=extensions) as r:
        received = bytearray()
        # Past the cap the read is cancelled rather than left: the cancellation unwinds
        # httpcore's generators from inside, where leaving them at a yield would not.
        with trio.CancelScope() as cut:
            async for chunk in r.aiter_stream():
                if not cut.cancel_called:
                    received.extend(chunk)
                    if len(received) > max_bytes:
                        cut.cancel()
        if cut.cancel_called:
            msg = f"the response body passed {max_bytes} bytes"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.EMSGSIZE)
        return HttpResponse(
            r.status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in r.headers],
            bytes(received), url,
        )  # fmt: skip


async def request(
    network: NetworkPolicy | None,
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]],
    body: bytes,
    timeout: float,  # noqa: ASYNC109 - the request's own deadline, passed on to httpcore
    max_bytes: int,
    follow_redirects: bool,
) -> HttpResponse:
    """Make one HTTP request (and its redirects, if followed) under ``network``.

    Raises:
        SyscallPermissionError: EPERM, a destination the policy does not allow.
        SyscallTimeoutError: ETIMEDOUT, the whole request took longer than ``timeout``.
        SyscallUnavailableError: ECONNREFUSED, the server could not be reached or broke off.
        SyscallExhaustedError: EMSGSIZE, the body passed ``max_bytes``.
        SyscallInvalidArgumentError: EINVAL, a URL httpcore cannot request.
    """
    pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(), network_backend=_CheckedBackend(network),
        max_connections=4,
    )  # fmt: skip
    try:
        with trio.fail_after(timeout):
            response = await _once(pool, method, url, headers, body, max_bytes, timeout)
            hops = 0
            while follow_redirects and response.status in _REDIRECTS:
                location = {k.lower(): v for k, v in response.headers}.get("location")
                if location is None:
                    break
                hops += 1
                if hops > MAX_REDIRECTS:
                    msg = f"more than {MAX_REDIRECTS} redirects"
                    raise SyscallUnavailableError(msg, code=ErrorCode.EIO)
                target = _redirect_target(httpcore.URL(response.url), location.encode("latin-1"))
                if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                    method, body = "GET", b""
                response = await _once(pool, method, target, headers, body, max_bytes, timeout)
            return response
    except trio.TooSlowError:
        msg = f"{url}: no complete answer within {timeout} s"
        raise SyscallTimeoutError(msg) from None
    except (httpcore.ConnectTimeout, httpcore.ReadTimeout, httpcore.WriteTimeout) as exc:
        msg = f"{url}: timed out ({type(exc).__name__})"
        raise SyscallTimeoutError(msg) from None
    except (httpcore.ConnectError, httpcore.ReadError, httpcore.WriteError,
            httpcore.RemoteProtocolError) as exc:  # fmt: skip
        msg = f"{url}: {exc or type(exc).__name__}"
        raise SyscallUnavailableError(msg, code=ErrorCode.ECONNREFUSED) from None
    except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
        raise SyscallInvalidArgumentError(f"{url}: {exc}") from None
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()
