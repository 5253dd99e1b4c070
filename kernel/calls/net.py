"""Handlers of ``net.*``: the kernel's sockets for processes, and its HTTP requests."""

from __future__ import annotations

import ipaddress
import math
import select
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallInvalidArgumentError,
    SyscallPermissionError,
    SyscallTimeoutError,
    SyscallUnavailableError,
)
from kernel.abi.net import (
    NET_ACCEPT,
    NET_BIND,
    NET_CLOSE,
    NET_CONNECT,
    NET_GET_OPT,
    NET_LISTEN,
    NET_RECV,
    NET_RECV_FROM,
    NET_REQUEST,
    NET_SEND,
    NET_SEND_TO,
    NET_SET_OPT,
    NET_SOCKET,
    NetAcceptArgs,
    NetAddress,
    NetBindArgs,
    NetConnectArgs,
    NetConnectResult,
    NetFamily,
    NetGetOptArgs,
    NetListenArgs,
    NetOption,
    NetOptionResult,
    NetRecvArgs,
    NetRecvFromResult,
    NetRecvResult,
    NetRequestArgs,
    NetRequestResult,
    NetSendArgs,
    NetSendResult,
    NetSendToArgs,
    NetSetOptArgs,
    NetSockArgs,
    NetSocketArgs,
    NetSocketInfo,
    NetType,
)
from kernel.calls._table import CallContext, CallTable
from kernel.net import (
    HttpClient,
    HttpRequest,
    KernelSocket,
    SocketTable,
    check_destination,
    check_reachable,
    net_error,
    resolve,
)
from kernel.proc import ProcessTable
from sandbox.policy import NetworkPolicy

__all__ = ["NetCalls"]

T = TypeVar("T")

_FAMILIES = {NetFamily.INET: socket.AF_INET, NetFamily.INET6: socket.AF_INET6}
_LOOPBACK: dict[int, str] = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
_TYPES = {NetType.STREAM: socket.SOCK_STREAM, NetType.DGRAM: socket.SOCK_DGRAM}
_FIRST_UNPRIVILEGED_PORT = 1024
_BUFFER_RANGE = (1024, 16 << 20)
# option -> (level, name, is a flag)
_OPTIONS: dict[NetOption, tuple[int, int, bool]] = {
    NetOption.REUSE_ADDR: (socket.SOL_SOCKET, socket.SO_REUSEADDR, True),
    NetOption.KEEP_ALIVE: (socket.SOL_SOCKET, socket.SO_KEEPALIVE, True),
    NetOption.NO_DELAY: (socket.IPPROTO_TCP, socket.TCP_NODELAY, True),
    NetOption.RECV_BUFFER: (socket.SOL_SOCKET, socket.SO_RCVBUF, False),
    NetOption.SEND_BUFFER: (socket.SOL_SOCKET, socket.SO_SNDBUF, False),
}


def _address(sockaddr: Any) -> NetAddress:
    return NetAddress(host=str(sockaddr[0]), port=int(sockaddr[1]))


def _usable(held: KernelSocket) -> None:
    """Refuse a socket trio closed under its id (a connect that was interrupted)."""
    if held.sock.fileno() < 0:
        msg = f"socket {held.id} was closed when its connect was interrupted: close it"
        raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF)


def _ready(held: KernelSocket, *, write: bool) -> bool:
    """Whether the socket could be used now without waiting."""
    poll = select.poll()
    poll.register(held.sock.fileno(), select.POLLOUT if write else select.POLLIN)
    return bool(poll.poll(0))


async def _within(
    held: KernelSocket, wait: float | None, what: str, work: Callable[[], Awaitable[T]],
    *, write: bool = False,
) -> T:  # fmt: skip
    """Run ``work`` on ``held`` within ``wait`` seconds (0: only if it need not wait).

    One call at a time works each direction of a socket; the others wait their turn
    within their own deadlines.
    """
    lock = held.sending if write else held.receiving
    try:
        _usable(held)
        if wait == 0:
            try:
                lock.acquire_nowait()
            except trio.WouldBlock:
                msg = f"{what}: another call is using the socket"
                raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN) from None
            try:
                if not _ready(held, write=write):
                    msg = f"{what}: it would have to wait"
                    raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN)
                return await work()  # ready: trio's first, non-blocking, attempt succeeds
            finally:
                lock.release()
        with trio.fail_after(math.inf if wait is None else wait):
            async with lock:
                return await work()
    except trio.TooSlowError:
        msg = f"{what}: nothing within {wait} s"
        raise SyscallTimeoutError(msg) from None
    except trio.ClosedResourceError:
        msg = f"{what}: the socket was closed meanwhile"
        raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF) from None
    except OSError as exc:
        raise net_error(exc, what) from exc


class NetCalls:
    """Sockets held for the processes of ``processes``, and HTTP requests made for them.

    A process's sockets close when it exits.
    """

    def __init__(self, sockets: SocketTable, http: HttpClient, processes: ProcessTable) -> None:
        self.sockets = sockets
        self.http = http
        self._processes = processes
        processes.on_exit(sockets.release)

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(NET_SOCKET, self.socket)
        table.bind(NET_BIND, self.bind_address)
        table.bind(NET_LISTEN, self.listen)
        table.bind(NET_ACCEPT, self.accept)
        table.bind(NET_CONNECT, self.connect)
        table.bind(NET_SEND, self.send)
        table.bind(NET_RECV, self.recv)
        table.bind(NET_SEND_TO, self.send_to)
        table.bind(NET_RECV_FROM, self.recv_from)
        table.bind(NET_CLOSE, self.close)
        table.bind(NET_SET_OPT, self.set_opt)
        table.bind(NET_GET_OPT, self.get_opt)
        table.bind(NET_REQUEST, self.request)

    def _network(self, ctx: CallContext) -> NetworkPolicy | None:
        """The caller's network policy (None: the administrator, anywhere).

        A process without a policy has no network (mode ``none``).
        """
        if ctx.caller.capabilities is None:
            return None
        process = self._processes.live_process(ctx.caller.pid)
        policy = process.policy if process is not None else None
        return policy.network if policy is not None else NetworkPolicy()

    def _held(self, ctx: CallContext, sock_id: int) -> KernelSocket:
        """The caller's socket ``sock_id`` (the administrator's: any).

        Another process's socket is ``EBADF``, as if it did not exist: ids are handles.
        """
        held = self.sockets.get(sock_id)
        if held is None or (ctx.caller.capabilities is not None and held.owner != ctx.caller.pid):
            msg = f"no socket {sock_id}"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.EBADF, call=ctx.spec.name)
        return held

    async def socket(self, ctx: CallContext, args: NetSocketArgs) -> NetSocketInfo:
        """``net.socket``."""
        held = self.sockets.open(ctx.caller.pid, _FAMILIES[args.family], _TYPES[args.type])
        return NetSocketInfo(sock=held.id, family=args.family, type=args.type)

    async def bind_address(self, ctx: CallContext, args: NetBindArgs) -> NetAddress:
        """``net.bind``: processes bind loopback addresses, port 0 or from 1024."""
        held = self._held(ctx, args.sock)
        _usable(held)
        host = _LOOPBACK[held.family] if args.host in (None, "localhost") else args.host
        if ctx.caller.capabilities is not None:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback or 0 < args.port < _FIRST_UNPRIVILEGED_PORT:
                msg = f"{host}:{args.port}: processes bind loopback addresses, port 0 or 1024+"
                raise SyscallPermissionError(msg, code=ErrorCode.EACCES, call=ctx.spec.name)
        try:
            await held.sock.bind((host, args.port))
            bound = _address(held.sock.getsockname())
        except OSError as exc:
            raise net_error(exc, f"bind {host}:{args.port}") from exc
        held.bound = True
        return bound

    async def listen(self, ctx: CallContext, args: NetListenArgs) -> NetAddress:
        """``net.listen``: on a bound stream socket (an unbound one would take every address)."""
        held = self._held(ctx, args.sock)
        _usable(held)
        if not held.is_stream:
            msg = "only a stream socket listens"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        if not held.bound:
            msg = f"socket {held.id} is not bound: net.bind it first"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        try:
            held.sock.listen(args.backlog)
            where = _address(held.sock.getsockname())
        except OSError as exc:
            raise net_error(exc, "listen") from exc
        held.listening = True
        return where

    async def accept(self, ctx: CallContext, args: NetAcceptArgs) -> NetConnectResult:
        """``net.accept``: the connection becomes a socket of the listening socket's owner."""
        held = self._held(ctx, args.sock)
        if not held.listening:
            msg = f"socket {held.id} is not listening"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        connection, peer = await _within(held, args.timeout, "accept", held.sock.accept)
        taken = self.sockets.adopt(held.owner, connection)  # EMFILE: the connection is shut
        try:
            local = _address(connection.getsockname())
        except OSError as exc:
            raise net_error(exc, "accept") from exc
        return NetConnectResult(sock=taken.id, peer=_address(peer), local=local)

    async def _destination(
        self, ctx: CallContext, held: KernelSocket, host: str, port: int
    ) -> tuple[str, int]:
        """The first address of ``host`` the caller's policy allows, as a sockaddr.

        Raises:
            SyscallPermissionError: EPERM, no address of ``host`` is allowed (the first
                refusal is the one reported).
        """
        network = self._network(ctx)
        refused: SyscallError | None = None
        try:
            check_reachable(network, host)  # before the name is looked up
            for address in await resolve(host, port, held.family, held.kind):
                try:
                    check_destination(network, address, port)
                except SyscallError as exc:
                    refused = refused or exc
                    continue
                return str(address), port
        except SyscallError as exc:
            refused = exc
        assert refused is not None  # resolve() returns at least one address
        refused.call = ctx.spec.name
        raise refused

    async def connect(self, ctx: CallContext, args: NetConnectArgs) -> NetConnectResult:
        """``net.connect``: to an address of ``host`` the policy allows.

        A connect that times out or is cancelled leaves the socket closed (its state is
        unknown): only ``net.close`` takes it then.
        """
        held = self._held(ctx, args.sock)
        if args.timeout == 0:
            msg = "a connection cannot be made without waiting: give a timeout, or none"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        target = await self._destination(ctx, held, args.host, args.port)
        what = f"connect {target[0]}:{target[1]}"
        await _within(held, args.timeout, what, lambda: held.sock.connect(target), write=True)
        try:
            peer, local = held.sock.getpeername(), held.sock.getsockname()
        except OSError as exc:
            raise net_error(exc, what) from exc
        held.bound = True
        return NetConnectResult(sock=held.id, peer=_address(peer), local=_address(local))

    async def send(self, ctx: CallContext, args: NetSendArgs) -> NetSendResult:
        """``net.send``: what the socket took (a stream may take less than given)."""
        held = self._held(ctx, args.sock)
        sent = await _within(
            held, args.timeout, "send", lambda: held.sock.send(args.data), write=True
        )
        return NetSendResult(sent=sent)

    async def recv(self, ctx: CallContext, args: NetRecvArgs) -> NetRecvResult:
        """``net.recv``: empty data at the end of a stream."""
        held = self._held(ctx, args.sock)
        data = await _within(held, args.timeout, "recv", lambda: held.sock.recv(args.size))
        return NetRecvResult(data=data)

    def _datagram(self, ctx: CallContext, held: KernelSocket) -> None:
        if held.is_stream:
            msg = f"{ctx.spec.name} is for datagram sockets: connect a stream one, then send/recv"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)

    async def send_to(self, ctx: CallContext, args: NetSendToArgs) -> NetSendResult:
        """``net.send_to``: a datagram to a destination the policy allows."""
        held = self._held(ctx, args.sock)
        self._datagram(ctx, held)
        target = await self._destination(ctx, held, args.host, args.port)
        sent = await _within(
            held, args.timeout, f"send to {target[0]}:{target[1]}",
            lambda: held.sock.sendto(args.data, target), write=True,
        )  # fmt: skip
        return NetSendResult(sent=sent)

    async def recv_from(self, ctx: CallContext, args: NetRecvArgs) -> NetRecvFromResult:
        """``net.recv_from``: a datagram and its sender."""
        held = self._held(ctx, args.sock)
        self._datagram(ctx, held)
        data, peer = await _within(
            held, args.timeout, "recv_from", lambda: held.sock.recvfrom(args.size)
        )
        return NetRecvFromResult(data=data, peer=_address(peer))

    async def close(self, ctx: CallContext, args: NetSockArgs) -> NetSockArgs:
        """``net.close``: calls waiting on the socket end with ``EBADF``."""
        self._held(ctx, args.sock)
        self.sockets.close(args.sock)
        return args

    def _option(
        self, ctx: CallContext, held: KernelSocket, option: NetOption
    ) -> tuple[int, int, bool]:
        _usable(held)
        if option is NetOption.NO_DELAY and not held.is_stream:
            msg = "no_delay is a TCP option"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        return _OPTIONS[option]

    async def set_opt(self, ctx: CallContext, args: NetSetOptArgs) -> NetOptionResult:
        """``net.set_opt``: flags true/false (or 1/0); buffer sizes 1 KiB .. 16 MiB."""
        held = self._held(ctx, args.sock)
        level, name, flag = self._option(ctx, held, args.option)
        low, high = (0, 1) if flag else _BUFFER_RANGE
        if (isinstance(args.value, bool) and not flag) or not low <= args.value <= high:
            msg = f"{args.option.value} takes {low}..{high}, not {args.value!r}"
            raise SyscallInvalidArgumentError(msg, call=ctx.spec.name)
        try:
            held.sock.setsockopt(level, name, int(args.value))
        except OSError as exc:
            raise net_error(exc, f"set_opt {args.option.value}") from exc
        return await self.get_opt(ctx, NetGetOptArgs(sock=args.sock, option=args.option))

    async def get_opt(self, ctx: CallContext, args: NetGetOptArgs) -> NetOptionResult:
        """``net.get_opt``: flags as 0/1; buffers as the kernel keeps them (doubled)."""
        held = self._held(ctx, args.sock)
        level, name, flag = self._option(ctx, held, args.option)
        try:
            value = held.sock.getsockopt(level, name)
        except OSError as exc:
            raise net_error(exc, f"get_opt {args.option.value}") from exc
        return NetOptionResult(option=args.option, value=int(bool(value)) if flag else value)

    async def request(self, ctx: CallContext, args: NetRequestArgs) -> NetRequestResult:
        """``net.request``: every connection it makes is checked against the policy."""
        try:
            response = await self.http.request(
                ctx.caller.pid, self._network(ctx),
                HttpRequest(
                    args.method.value, args.url, headers=tuple(args.headers), body=args.body,
                    timeout=args.timeout, max_bytes=args.max_bytes,
                    follow_redirects=args.follow_redirects,
                ),
            )  # fmt: skip
        except SyscallError as exc:
            exc.call = exc.call or ctx.spec.name
            raise
        return NetRequestResult(
            status=response.status, headers=response.headers, body=response.body,
            url=response.url,
        )  # fmt: skip
