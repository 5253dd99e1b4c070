"""A trio client for the kernel socket.

    async with open_kernel_client(path) as kernel:
        info = await kernel.invoke(SYS_INFO)                 # typed: SysInfoResult
        raw = await kernel.call("proc.info", {"pid": 3})     # the wire map
        async with kernel.stream("sys.events") as events:    # streaming calls
            async for item in events: ...

Calls from many tasks share one connection; replies are matched by id. Errors arrive as
the typed exceptions of ``kernel.abi`` (``SyscallNotFoundError`` is a ``NotFoundError``);
a lost connection fails every pending call with ``SyscallUnavailableError`` (ECONNRESET).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from kernel.abi import (
    DEFAULT_MAX_FRAME_BYTES,
    CallSpec,
    ErrorCode,
    FrameDecoder,
    Reply,
    SyscallError,
    SyscallInvalidArgumentError,
    SyscallPermissionError,
    SyscallTimeoutError,
    SyscallUnavailableError,
    WireModel,
    decode_payload,
    encode_frame,
    parse_reply,
    syscall_error,
)
from sandbox.errors import AgentOSError

__all__ = ["CallStream", "KernelClient", "open_kernel_client"]

logger = logging.getLogger("agentos.kernel.client")

ArgsT = TypeVar("ArgsT", bound=WireModel)
ResultT = TypeVar("ResultT", bound=WireModel)

_STREAM_BUFFER = 256
_CLOSE_SECONDS = 1.0


class _Lost:
    """Marker delivered to pending calls when the connection ends."""

    def __init__(self, error: SyscallError) -> None:
        self.error = error


class CallStream:
    """The items of a streaming call; ``result`` holds the final result once exhausted."""

    def __init__(self, call: str, replies: trio.MemoryReceiveChannel[Reply | _Lost]) -> None:
        self._call = call
        self._replies = replies
        self.result: Any = None
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the final reply (result or error) has arrived."""
        return self._done

    def __aiter__(self) -> CallStream:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        reply = await self._replies.receive()
        if isinstance(reply, _Lost):
            self._done = True
            raise reply.error
        if reply.is_item:
            return reply.item
        self._done = True
        self.result = _unwrap(self._call, reply)
        raise StopAsyncIteration


def _unwrap(call: str, reply: Reply) -> Any:
    if reply.ok:
        return reply.result
    assert reply.error is not None
    raise syscall_error(
        reply.error.code, reply.error.message, details=reply.error.details, call=call
    )


class KernelClient:
    """One connection to the kernel. Use :func:`open_kernel_client` to make one."""

    def __init__(
        self, stream: trio.abc.Stream, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        self._stream = stream
        self._max_frame = max_frame_bytes
        self._ids = itertools.count(1)
        self._pending: dict[int, trio.MemorySendChannel[Reply | _Lost]] = {}
        self._send_lock = trio.StrictFIFOLock()
        self._closed = trio.Event()
        self._lost: SyscallError | None = None

    @property
    def closed(self) -> bool:
        """Whether the connection has ended (by either side)."""
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        """Return once the connection has ended."""
        await self._closed.wait()

    async def call(
        self, name: str, args: Mapping[str, Any] | None = None, *, as_pid: int | None = None
    ) -> Any:
        """Make a call and return its wire result.

        Args:
            name: the call.
            args: its arguments.
            as_pid: act as this process (the admin socket only).

        Raises:
            SyscallError: the kernel's error, as the subclass of its category.
        """
        request_id, replies = await self._send(name, args, buffer=1, as_pid=as_pid)
        answered = False
        try:
            reply = await replies.receive()
            answered = True
        finally:
            self._pending.pop(request_id, None)
            replies.close()
            if not answered:  # the caller gave up: so may the kernel
                await self._cancel_remote(request_id)
        if isinstance(reply, _Lost):
            raise reply.error
        if reply.is_item:
            msg = f"{name} streamed an item; use KernelClient.stream() for streaming calls"
            raise SyscallInvalidArgumentError(msg, call=name)
        return _unwrap(name, reply)

    async def invoke(
        self,
        spec: CallSpec[ArgsT, ResultT],
        args: ArgsT | None = None,
        *,
        as_pid: int | None = None,
    ) -> ResultT:
        """Make a call with typed arguments and return its validated, typed result."""
        payload = (args if args is not None else spec.args()).to_wire()
        return spec.result.model_validate(await self.call(spec.name, payload, as_pid=as_pid))

    @asynccontextmanager
    async def stream(
        self, name: str, args: Mapping[str, Any] | None = None, *, as_pid: int | None = None
    ) -> AsyncIterator[CallStream]:
        """Make a streaming call; iterate the context's value for its items."""
        request_id, replies = await self._send(name, args, buffer=_STREAM_BUFFER, as_pid=as_pid)
        stream = CallStream(name, replies)
        try:
            yield stream
        finally:
            # Closing our end makes the reader drop this call's remaining items instead of
            # blocking the shared connection on a buffer nobody empties; and the kernel is
            # told to stop producing them.
            self._pending.pop(request_id, None)
            replies.close()
            if not stream.done:
                await self._cancel_remote(request_id)

    async def aclose(self) -> None:
        """Close the connection; pending calls fail with ECONNRESET."""
        await self._stream.aclose()
        self._fail_all(SyscallUnavailableError("client closed", code=ErrorCode.ECONNRESET))

    async def _send(
        self, name: str, args: Mapping[str, Any] | None, *, buffer: int, as_pid: int | None
    ) -> tuple[int, trio.MemoryReceiveChannel[Reply | _Lost]]:
        if self._lost is not None:
            raise self._lost
        request_id = next(self._ids)
        request: dict[str, Any] = {"id": request_id, "call": name, "args": dict(args or {})}
        if as_pid is not None:
            request["as_pid"] = as_pid
        frame = encode_frame(request, max_bytes=self._max_frame)
        send, receive = trio.open_memory_channel[Reply | _Lost](buffer)
        async with self._send_lock:
            # Registered only now: a call cancelled while it waited for the lock owes nothing.
            self._pending[request_id] = send
            try:
                await self._stream.send_all(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._pending.pop(request_id, None)
                raise SyscallUnavailableError(
                    f"kernel connection lost: {exc}", code=ErrorCode.ECONNRESET, call=name
                ) from exc
            except trio.Cancelled:
                # Part of the frame may be out: the byte stream is unusable from here on.
                self._pending.pop(request_id, None)
                with trio.move_on_after(_CLOSE_SECONDS, shield=True):
                    await self._stream.aclose()
                raise
        return request_id, receive

    async def _cancel_remote(self, request_id: int) -> None:
        """Ask the kernel to cancel a request nobody waits for any more (``sys.cancel``).

        Best effort, and never waited for: its reply is dropped like any abandoned one.
        """
        if self._lost is not None:
            return
        request = {"id": next(self._ids), "call": "sys.cancel", "args": {"id": request_id}}
        frame = encode_frame(request, max_bytes=self._max_frame)
        with trio.CancelScope(shield=True):
            async with self._send_lock:
                with trio.move_on_after(_CLOSE_SECONDS) as late:
                    try:
                        await self._stream.send_all(frame)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return
                if late.cancelled_caught:  # part of the frame may be out: unusable now
                    await self._stream.aclose()

    def _fail_all(self, error: SyscallError) -> None:
        if self._lost is None:
            self._lost = error
        for channel in self._pending.values():
            try:
                channel.send_nowait(_Lost(error))
            except (trio.WouldBlock, trio.BrokenResourceError):
                channel.close()
        self._pending.clear()
        self._closed.set()

    async def _route(self, reply: Reply) -> None:
        assert reply.id is not None
        channel = self._pending.get(reply.id)
        if channel is None:
            logger.debug("dropping reply to abandoned request %d", reply.id)
            return
        try:
            await channel.send(reply)
        except trio.BrokenResourceError:
            self._pending.pop(reply.id, None)

    async def run_reader(self) -> None:
        """Read replies until the connection ends; run this in the owning nursery.

        Never raises: however the connection ends (EOF, a broken socket, a frame the
        protocol does not allow), pending and later calls fail with a SyscallError.
        """
        error: SyscallError = SyscallUnavailableError(
            "kernel connection closed", code=ErrorCode.ECONNRESET
        )  # also if the reader is cancelled
        try:
            error = await self._read_replies()
        except AgentOSError as exc:  # a frame too large, not msgpack, not a reply: lost
            error = SyscallUnavailableError(
                f"kernel sent an invalid frame: {exc}", code=ErrorCode.ECONNRESET
            )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            error = SyscallUnavailableError(
                f"kernel connection lost: {exc}", code=ErrorCode.ECONNRESET
            )
        finally:
            self._fail_all(error)
            with trio.move_on_after(_CLOSE_SECONDS, shield=True):
                await self._stream.aclose()

    async def _read_replies(self) -> SyscallError:
        """Route replies until the connection ends; return the error its calls get."""
        decoder = FrameDecoder(max_frame_bytes=self._max_frame)
        while data := await self._stream.receive_some(64 * 1024):
            decoder.feed(data)
            for payload in decoder:
                reply = parse_reply(decode_payload(payload))
                if reply.id is None:  # a connection-level error: nothing more will come
                    assert reply.error is not None  # parse_reply guarantees it
                    return syscall_error(reply.error.code, reply.error.message)
                await self._route(reply)
        return SyscallUnavailableError("kernel closed the connection", code=ErrorCode.ECONNRESET)


async def _connect_unix(path: str) -> trio.SocketStream:
    """Connect, waiting while the kernel's accept queue is full.

    A non-blocking connect(2) to a Unix socket whose backlog is full fails with EAGAIN
    and, unlike TCP, does not complete later; trio takes that for "in progress" and
    returns a socket that is not connected. So retry until the kernel makes room.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)  # noqa: FBT003 - the stdlib signature
    delay = 0.001
    try:
        while True:
            try:
                sock.connect(path)
                break
            except BlockingIOError:  # EAGAIN: the accept queue is full
                await trio.sleep(delay)
                delay = min(2 * delay, 0.05)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(trio.socket.from_stdlib_socket(sock))


@asynccontextmanager
async def open_kernel_client(
    path: Path | str,
    *,
    connect_timeout: float = 5.0,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> AsyncIterator[KernelClient]:
    """Connect to the kernel socket at ``path``.

    Raises:
        SyscallUnavailableError: ECONNREFUSED, nothing serves at ``path`` (or the path
            cannot be a socket).
        SyscallPermissionError: EACCES, the socket's permissions exclude this user.
        SyscallTimeoutError: ETIMEDOUT, the kernel did not accept in time (a full accept
            queue is waited on until then).
    """
    try:
        with trio.fail_after(connect_timeout):
            stream = await _connect_unix(os.fspath(path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        msg = f"no kernel is serving at {path} ({exc.strerror})"
        raise SyscallUnavailableError(msg, code=ErrorCode.ECONNREFUSED) from exc
    except PermissionError as exc:
        msg = f"not allowed to connect to {path} ({exc.strerror})"
        raise SyscallPermissionError(msg, code=ErrorCode.EACCES) from exc
    except trio.TooSlowError as exc:
        msg = f"the kernel at {path} did not accept within {connect_timeout} s"
        raise SyscallTimeoutError(msg) from exc
    except OSError as exc:
        msg = f"cannot connect to the kernel at {path}: {exc.strerror or exc}"
        raise SyscallUnavailableError(msg, code=ErrorCode.ECONNREFUSED) from exc
    try:
        async with trio.open_nursery() as nursery:
            client = KernelClient(stream, max_frame_bytes=max_frame_bytes)
            nursery.start_soon(client.run_reader)
            try:
                yield client
            finally:
                await client.aclose()
    except BaseExceptionGroup as group:
        # The reader never raises, so a group here holds the caller's own exception: give
        # it back as raised, rather than wrapped by a nursery the caller cannot see.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
