"""One kernel-socket connection: read frames, run requests concurrently, write replies.

Requests on a connection run concurrently (up to ``max_in_flight``, counting those whose
reply waits to be written; past that the reader stops reading, which is the client's
backpressure, also for a peer that does not read its replies). Replies go through one writer task,
so frames never interleave. A malformed frame gets an EINVAL reply and the connection
goes on; a frame over the size limit gets one and the connection ends, since the stream
cannot be trusted after it. When the peer closes its side, calls still running are
cancelled: a client must keep the connection open while it waits for replies.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

import trio

from kernel.abi import (
    ErrorCode,
    FrameDecoder,
    FrameTooLargeError,
    MalformedFrameError,
    MalformedRequestError,
    Request,
    SyscallError,
    SyscallInvalidArgumentError,
    decode_payload,
    encode_frame,
    error_code,
    error_reply,
    item_reply,
    ok_reply,
    parse_request,
)
from kernel.calls import ActAs, Caller, CallTable, own_pid_only
from sandbox.errors import AgentOSError

__all__ = ["Connection", "linger_close"]

logger = logging.getLogger("agentos.kernel.server")

_Outgoing = tuple[bytes, list[int]]
"""A frame, and the descriptors to pass with it."""

_RECEIVE_BYTES = 64 * 1024
_OUTBOX_FRAMES = 64
_DRAIN_SECONDS = 5.0


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


async def linger_close(stream: trio.abc.HalfCloseableStream, *, seconds: float = 1.0) -> None:
    """Close after our last frame, so that the peer reads it rather than a reset.

    Closing a Unix socket with unread input makes the peer's reads fail with ECONNRESET,
    losing the reply we just sent. So: send EOF, discard input until the peer closes too
    (or ``seconds`` pass), then close.
    """
    with trio.move_on_after(seconds, shield=True):
        try:
            await stream.send_eof()
            while await stream.receive_some(_RECEIVE_BYTES):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    with trio.move_on_after(1, shield=True):
        await stream.aclose()


class Connection:
    """Serves one connected peer until it leaves or breaks the protocol."""

    def __init__(
        self,
        stream: trio.abc.HalfCloseableStream,
        table: CallTable,
        caller: Caller,
        *,
        max_frame_bytes: int,
        max_in_flight: int = 128,
        act_as: ActAs | None = None,
    ) -> None:
        self._stream = stream
        self._table = table
        self._caller = caller
        self._act_as = act_as or own_pid_only
        self._max_frame = max_frame_bytes
        self._slots = trio.Semaphore(max_in_flight)
        self._in_flight: dict[int, trio.CancelScope] = {}
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[_Outgoing](_OUTBOX_FRAMES)

    async def run(self) -> None:
        """Serve until EOF, a fatal protocol error, or a broken peer; then close."""
        fatal = None
        try:
            async with trio.open_nursery() as outer:
                outer.start_soon(self._write_loop, outer.cancel_scope)
                async with trio.open_nursery() as handlers:
                    fatal = await self._read_loop(handlers)
                    handlers.cancel_scope.cancel()
                if fatal is not None:
                    await self._outbox_send.send((self._encode(fatal), []))
                await self._outbox_send.aclose()
                outer.cancel_scope.deadline = trio.current_time() + _DRAIN_SECONDS
        finally:
            if fatal is not None:
                await linger_close(self._stream)
            else:
                with trio.move_on_after(1, shield=True):
                    await self._stream.aclose()

    async def _read_loop(self, handlers: trio.Nursery) -> dict[str, Any] | None:
        """Read and dispatch frames; return a final error reply if the stream is unusable."""
        decoder = FrameDecoder(max_frame_bytes=self._max_frame)
        while True:
            try:
                data = await self._stream.receive_some(_RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if not data:
                if decoder.buffered:
                    logger.debug("peer closed with %d bytes of a partial frame", decoder.buffered)
                return None
            decoder.feed(data)
            try:
                for payload in decoder:
                    await self._accept(payload, handlers)
            except FrameTooLargeError as exc:
                logger.warning("closing connection from uid %d: %s", self._caller.uid, exc)
                return error_reply(None, ErrorCode.EINVAL, str(exc))

    async def _accept(self, payload: bytes, handlers: trio.Nursery) -> None:
        try:
            request = parse_request(decode_payload(payload))
        except MalformedFrameError as exc:
            await self._send(error_reply(None, ErrorCode.EINVAL, str(exc)))
            return
        except MalformedRequestError as exc:
            await self._send(error_reply(exc.request_id, exc.code, exc.message, exc.details))
            return
        if request.id in self._in_flight:
            message = f"request id {request.id} is already in flight on this connection"
            await self._send(error_reply(request.id, ErrorCode.EINVAL, message))
            return
        await self._slots.acquire()
        self._in_flight[request.id] = trio.CancelScope()
        handlers.start_soon(self._serve, request, name=f"{request.call}#{request.id}")

    def _cancel_request(self, request_id: int) -> bool:
        """``sys.cancel``: cancel a request in flight; whether there was one to cancel."""
        scope = self._in_flight.get(request_id)
        if scope is None or scope.cancel_called:
            return False
        scope.cancel()
        return True

    async def _serve(self, request: Request) -> None:
        # The slot is held until the reply is queued: a peer that does not read its
        # replies fills the outbox, and then the reader stops taking new requests.
        fds: list[int] = []  # descriptors the call hands over with its reply
        try:
            scope = self._in_flight[request.id]
            try:
                with scope:
                    reply = await self._run_call(request, fds)
                if scope.cancelled_caught:
                    message = f"{request.call} was cancelled by sys.cancel"
                    reply = error_reply(request.id, ErrorCode.ECANCELED, message)
            finally:
                del self._in_flight[request.id]
            if not reply.get("ok"):
                _close_all(fds)
            outgoing = (self._encode(reply, call=request.call), fds)
            fds = []  # the writer owns them now
            await self._outbox_send.send(outgoing)
        finally:
            _close_all(fds)
            self._slots.release()

    async def _run_call(self, request: Request, fds: list[int]) -> dict[str, Any]:
        async def emit(item: Mapping[str, Any]) -> None:
            try:
                frame = encode_frame(item_reply(request.id, item), max_bytes=self._max_frame)
            except FrameTooLargeError as exc:
                raise SyscallInvalidArgumentError(
                    f"stream item too large: {exc}", code=ErrorCode.EMSGSIZE
                ) from None
            await self._outbox_send.send((frame, []))

        try:
            result = await self._table.dispatch(
                self._caller, request, emit, act_as=self._act_as,
                cancel_request=self._cancel_request, send_fd=fds.append,
            )  # fmt: skip
        except SyscallError as exc:
            return error_reply(request.id, exc.code, exc.message, exc.details)
        except AgentOSError as exc:
            return error_reply(request.id, error_code(exc), str(exc))
        except Exception:
            logger.exception("call %s failed", request.call)
            return error_reply(request.id, ErrorCode.EIO, f"internal error in {request.call}")
        return ok_reply(request.id, result)

    def _encode(self, reply: dict[str, Any], *, call: str | None = None) -> bytes:
        """Encode a reply; one that cannot be sent becomes an error for that request alone."""
        try:
            return encode_frame(reply, max_bytes=self._max_frame)
        except FrameTooLargeError as exc:
            message = f"reply too large: {exc}"
            return encode_frame(error_reply(reply["id"], ErrorCode.EMSGSIZE, message))
        except (TypeError, ValueError, OverflowError):
            logger.exception("the result of %s cannot be encoded", call)
            message = f"internal error: the result of {call} cannot be encoded"
            return encode_frame(error_reply(reply["id"], ErrorCode.EIO, message))

    async def _send(self, reply: dict[str, Any]) -> None:
        await self._outbox_send.send((self._encode(reply), []))

    async def _write_loop(self, cancel_scope: trio.CancelScope) -> None:
        try:
            async for frame, fds in self._outbox_recv:
                if not fds or not isinstance(self._stream, trio.SocketStream):
                    _close_all(fds)  # a stream that is no Unix socket carries none
                    await self._stream.send_all(frame)
                    continue
                try:  # the descriptors travel with the frame's first bytes
                    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                    sent = await self._stream.socket.sendmsg([frame], rights)
                except OSError as exc:
                    raise trio.BrokenResourceError from exc
                finally:
                    _close_all(fds)
                await self._stream.send_all(frame[sent:])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            logger.debug("peer of uid %d went away before its replies", self._caller.uid)
            cancel_scope.cancel()
