"""``net.*``: sockets the kernel holds for a process, and HTTP requests it makes for one.

Every destination is checked against the process's network policy (``none``: nowhere;
``egress``: public addresses; ``allowlist``: the listed CIDR:port pairs), on the address
actually connected to. Binding and listening need ``bind_port`` (loopback addresses and
port 0 or from 1024 for processes); everything else ``network_access``. ``timeout``:
None waits (until the request is cancelled), 0 does not wait (``EAGAIN``), more is a
deadline (``ETIMEDOUT``).
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, Strict

from kernel.abi._catalog import CallSpec, WireEnum, WireModel
from sandbox.capabilities import Capability

__all__ = [
    "MAX_HTTP_BODY",
    "MAX_IO_BYTES",
    "NET_ACCEPT",
    "NET_BIND",
    "NET_CLOSE",
    "NET_CONNECT",
    "NET_GET_OPT",
    "NET_LISTEN",
    "NET_RECV",
    "NET_RECV_FROM",
    "NET_REQUEST",
    "NET_SEND",
    "NET_SEND_TO",
    "NET_SET_OPT",
    "NET_SOCKET",
    "Header",
    "HttpMethod",
    "NetAcceptArgs",
    "NetAddress",
    "NetBindArgs",
    "NetConnectArgs",
    "NetConnectResult",
    "NetFamily",
    "NetGetOptArgs",
    "NetListenArgs",
    "NetOption",
    "NetOptionResult",
    "NetRecvArgs",
    "NetRecvFromResult",
    "NetRecvResult",
    "NetRequestArgs",
    "NetRequestResult",
    "NetSendArgs",
    "NetSendResult",
    "NetSendToArgs",
    "NetSetOptArgs",
    "NetSockArgs",
    "NetSocketArgs",
    "NetSocketInfo",
    "NetType",
]

Header = Annotated[tuple[str, str], Strict(strict=False)]
"""An HTTP header: a [name, value] pair on the wire (msgpack has no tuples)."""

MAX_IO_BYTES = 1 << 20
"""Bytes one ``net.send``/``net.recv`` moves at most."""
MAX_HTTP_BODY = 10 << 20
"""Bytes of a request or response body at most (a reply must fit in one 16 MiB frame)."""
MAX_TIMEOUT = 300.0

_HOST = Field(min_length=1, max_length=253, description="an IP address or a host name")
_TIMEOUT = Field(
    default=None, ge=0, le=MAX_TIMEOUT,
    description="seconds; None: wait (cancellable), 0: do not wait (EAGAIN)",
)  # fmt: skip


class NetFamily(enum.StrEnum):
    """Address family."""

    INET = "inet"
    INET6 = "inet6"


class NetType(enum.StrEnum):
    """Socket type."""

    STREAM = "stream"  # TCP
    DGRAM = "dgram"  # UDP


class NetOption(enum.StrEnum):
    """The socket options a process may read and set."""

    REUSE_ADDR = "reuse_addr"
    KEEP_ALIVE = "keep_alive"
    NO_DELAY = "no_delay"  # TCP only
    RECV_BUFFER = "recv_buffer"
    SEND_BUFFER = "send_buffer"


class HttpMethod(enum.StrEnum):
    """HTTP methods ``net.request`` makes."""

    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    OPTIONS = "OPTIONS"


class NetSocketArgs(WireModel):
    """Arguments of ``net.socket``."""

    family: WireEnum[NetFamily] = NetFamily.INET
    type: WireEnum[NetType] = NetType.STREAM


class NetSocketInfo(WireModel):
    """A socket the kernel holds for the caller."""

    sock: int
    family: WireEnum[NetFamily]
    type: WireEnum[NetType]


class NetSockArgs(WireModel):
    """Arguments naming one socket."""

    sock: int = Field(ge=1)


class NetAddress(WireModel):
    """An address and port."""

    host: str
    port: int


class NetBindArgs(WireModel):
    """Arguments of ``net.bind``."""

    sock: int = Field(ge=1)
    host: str | None = Field(
        default=None, min_length=1, max_length=253,
        description="an IP address or localhost; None: the family's loopback address",
    )  # fmt: skip
    port: int = Field(ge=0, le=65535, description="0: any free port")


class NetListenArgs(WireModel):
    """Arguments of ``net.listen``."""

    sock: int = Field(ge=1)
    backlog: int = Field(default=16, ge=1, le=128)


class NetAcceptArgs(WireModel):
    """Arguments of ``net.accept``."""

    sock: int = Field(ge=1)
    timeout: float | None = _TIMEOUT


class NetConnectArgs(WireModel):
    """Arguments of ``net.connect``."""

    sock: int = Field(ge=1)
    host: str = _HOST
    port: int = Field(ge=1, le=65535)
    timeout: float | None = _TIMEOUT


class NetConnectResult(WireModel):
    """A connection made (or, from ``net.accept``, taken)."""

    sock: int
    peer: NetAddress
    local: NetAddress


class NetSendArgs(WireModel):
    """Arguments of ``net.send``."""

    sock: int = Field(ge=1)
    data: bytes = Field(max_length=MAX_IO_BYTES)
    timeout: float | None = _TIMEOUT


class NetSendToArgs(NetSendArgs):
    """Arguments of ``net.send_to``."""

    host: str = _HOST
    port: int = Field(ge=1, le=65535)


class NetSendResult(WireModel):
    """Bytes the socket took (a stream may take fewer than given)."""

    sent: int


class NetRecvArgs(WireModel):
    """Arguments of ``net.recv`` and ``net.recv_from``."""

    sock: int = Field(ge=1)
    size: int = Field(default=65536, ge=1, le=MAX_IO_BYTES)
    timeout: float | None = _TIMEOUT


class NetRecvResult(WireModel):
    """Bytes received; empty at the end of a stream."""

    data: bytes


class NetRecvFromResult(WireModel):
    """A datagram and whom it came from."""

    data: bytes
    peer: NetAddress


class NetSetOptArgs(WireModel):
    """Arguments of ``net.set_opt``."""

    sock: int = Field(ge=1)
    option: WireEnum[NetOption]
    value: bool | Annotated[int, Field(ge=0, le=64 << 20)] = Field(
        description="flags: true/false or 1/0; buffers: bytes"
    )


class NetGetOptArgs(WireModel):
    """Arguments of ``net.get_opt``."""

    sock: int = Field(ge=1)
    option: WireEnum[NetOption]


class NetOptionResult(WireModel):
    """A socket option's value now."""

    option: WireEnum[NetOption]
    value: int


class NetRequestArgs(WireModel):
    """Arguments of ``net.request``."""

    method: WireEnum[HttpMethod] = HttpMethod.GET
    url: str = Field(min_length=8, max_length=8192, pattern=r"^https?://")
    headers: list[Header] = Field(
        default_factory=list, max_length=100, description="[name, value] pairs"
    )
    body: bytes = Field(default=b"", max_length=MAX_HTTP_BODY)
    timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT, description="the whole request")
    max_bytes: int = Field(default=MAX_HTTP_BODY, ge=0, le=MAX_HTTP_BODY)
    follow_redirects: bool = Field(default=False, description="at most 5, each checked")


class NetRequestResult(WireModel):
    """An HTTP response."""

    status: int
    headers: list[Header] = Field(description="[name, value] pairs")
    body: bytes
    url: str = Field(description="the URL that answered (after redirects)")


_NET = Capability.NETWORK_ACCESS

NET_SOCKET = CallSpec(
    "net.socket", "A new socket held by the kernel.", NetSocketArgs, NetSocketInfo, _NET
)
NET_BIND = CallSpec(
    "net.bind", "Give a socket a local address (processes: loopback, port 0 or from 1024).",
    NetBindArgs, NetAddress, Capability.BIND_PORT,
)  # fmt: skip
NET_LISTEN = CallSpec(
    "net.listen", "Accept connections on a bound stream socket.", NetListenArgs, NetAddress,
    Capability.BIND_PORT,
)  # fmt: skip
NET_ACCEPT = CallSpec(
    "net.accept", "Take the next connection to a listening socket.", NetAcceptArgs,
    NetConnectResult, _NET,
)  # fmt: skip
NET_CONNECT = CallSpec(
    "net.connect", "Connect to a destination the policy allows.", NetConnectArgs,
    NetConnectResult, _NET,
)  # fmt: skip
NET_SEND = CallSpec("net.send", "Send on a connected socket.", NetSendArgs, NetSendResult, _NET)
NET_RECV = CallSpec(
    "net.recv", "Receive from a connected socket.", NetRecvArgs, NetRecvResult, _NET
)
NET_SEND_TO = CallSpec(
    "net.send_to", "Send a datagram to a destination the policy allows.", NetSendToArgs,
    NetSendResult, _NET,
)  # fmt: skip
NET_RECV_FROM = CallSpec(
    "net.recv_from", "Receive a datagram and its sender.", NetRecvArgs, NetRecvFromResult, _NET
)
NET_CLOSE = CallSpec("net.close", "Close a socket.", NetSockArgs, NetSockArgs, _NET)
NET_SET_OPT = CallSpec("net.set_opt", "Set a socket option.", NetSetOptArgs, NetOptionResult, _NET)
NET_GET_OPT = CallSpec("net.get_opt", "Read a socket option.", NetGetOptArgs, NetOptionResult, _NET)
NET_REQUEST = CallSpec(
    "net.request", "An HTTP(S) request to a destination the policy allows.", NetRequestArgs,
    NetRequestResult, _NET,
)  # fmt: skip

SPECS = (
    NET_SOCKET, NET_BIND, NET_LISTEN, NET_ACCEPT, NET_CONNECT, NET_SEND, NET_RECV,
    NET_SEND_TO, NET_RECV_FROM, NET_CLOSE, NET_SET_OPT, NET_GET_OPT, NET_REQUEST,
)  # fmt: skip
