"""``/stream``: the desktop's WebSocket — tool calls, kernel events and process output.

JSON text messages, each with a ``type``. In: ``ping``, ``tool_call {id, tool_id, params,
app_id?}``, ``subscribe {topic: "events"}`` / ``subscribe {topic: "output", pid}`` and
``unsubscribe`` with the same fields. Out: ``system`` on connect, ``pong``,
``tool_result {id, success, data | error}``, ``event``, ``output {pid, seq, stream,
data}``, ``subscribed``/``unsubscribed``, and ``error {message, code, timestamp}``.

The token comes as ``?token=`` (browsers cannot set headers on a WebSocket) or as a
bearer header; a browser's ``Origin`` must be this server's own or a configured CORS
origin. Everything a connection sends waits in one bounded queue: a client too slow to
read it is disconnected (close code 1013) rather than let it grow.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from typing import Any

import trio
from quart import Blueprint, websocket

from kernel.client import abi
from orchestrator.auth import Tokens
from orchestrator.errors import status_of
from orchestrator.kernel_link import KernelLink
from orchestrator.services import ServiceContexts, ServiceRegistry
from sandbox import installed_version
from sandbox.errors import AgentOSError

__all__ = ["MAX_TOOL_CALLS", "OUTBOX_SIZE", "stream_routes"]

logger = logging.getLogger("agentos.orchestrator.stream")

OUTBOX_SIZE = 256
"""Messages a connection may have waiting to be sent before it counts as too slow."""
MAX_TOOL_CALLS = 32
"""Tool calls one connection may have running at once."""
MAX_MESSAGE_BYTES = 1 << 20

_TOO_SLOW = 1013  # "try again later": the server would not queue more for it
_POLICY = 1008


class _Connection:
    """One client's WebSocket: its outbox, its tool calls and its subscriptions."""

    def __init__(
        self,
        nursery: trio.Nursery,
        link: KernelLink,
        registry: ServiceRegistry,
        contexts: ServiceContexts,
    ) -> None:
        self.nursery = nursery
        self.link = link
        self.registry = registry
        self.contexts = contexts
        self.outbox, self._outbox_out = trio.open_memory_channel[dict[str, Any]](OUTBOX_SIZE)
        self.calls = trio.CapacityLimiter(MAX_TOOL_CALLS)
        self.subscriptions: dict[str, trio.CancelScope] = {}
        self.too_slow = False

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; past the bound the connection ends as too slow."""
        try:
            self.outbox.send_nowait(message)
        except trio.WouldBlock:
            self.too_slow = True
            self.nursery.cancel_scope.cancel()

    def error(self, message: str, code: str = "invalid_argument", **extra: Any) -> None:
        self.send(
            {"type": "error", "message": message, "code": code, "timestamp": time.time(), **extra}
        )

    async def pump(self) -> None:
        """Send what is queued, in order."""
        async for message in self._outbox_out:
            await websocket.send(json.dumps(message, default=_jsonable))

    async def read(self) -> None:
        """Act on the client's messages, as long as it sends them."""
        while True:
            self.handle(await websocket.receive())

    def handle(self, raw: str | bytes) -> None:
        """Act on one message from the client."""
        if len(raw) > MAX_MESSAGE_BYTES:
            self.error(f"message over {MAX_MESSAGE_BYTES} bytes")
            return
        try:
            message = json.loads(raw)
        except ValueError as exc:
            self.error(f"not JSON: {exc}")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            self.send({"type": "pong", "timestamp": time.time()})
        elif kind == "tool_call":
            self.tool_call(message)
        elif kind in ("subscribe", "unsubscribe"):
            self.subscription(kind, message)
        else:
            self.error(f"unknown message type {kind!r}")

    def tool_call(self, message: dict[str, Any]) -> None:
        call_id = message.get("id")
        tool_id, params, app_id = (message.get(k) for k in ("tool_id", "params", "app_id"))
        if not isinstance(call_id, str | int) or not isinstance(tool_id, str):
            self.error("a tool_call needs an id (string or number) and a tool_id")
            return
        if not isinstance(params, dict | None) or not isinstance(app_id, str | None):
            self.error("params must be an object, app_id a string", id=call_id)
            return
        if self.calls.borrowed_tokens >= MAX_TOOL_CALLS:
            self.error(
                f"over {MAX_TOOL_CALLS} tool calls at once", "resource_exhausted", id=call_id
            )
            return
        self.nursery.start_soon(self._run_tool, call_id, tool_id, params or {}, app_id)

    async def _run_tool(
        self, call_id: str | int, tool_id: str, params: dict[str, Any], app_id: str | None
    ) -> None:
        async with self.calls:
            reply: dict[str, Any] = {"type": "tool_result", "id": call_id}
            try:
                ctx = await self.contexts.for_app(app_id)
                data = await self.registry.execute(tool_id, params, ctx)
            except AgentOSError as exc:
                error: dict[str, Any] = {"code": status_of(exc)[1], "message": str(exc)}
                if details := getattr(exc, "details", None):
                    error["details"] = details
                reply |= {"success": False, "error": error}
            else:
                reply |= {"success": True, "data": data}
            self.send(reply)

    def subscription(self, kind: str, message: dict[str, Any]) -> None:
        topic, pid = message.get("topic"), message.get("pid")
        if topic == "events":
            key = "events"
        elif topic == "output" and isinstance(pid, int) and not isinstance(pid, bool):
            key = f"output:{pid}"
        else:
            self.error("subscribe to topic 'events', or 'output' with a pid")
            return
        current = self.subscriptions.pop(key, None)
        if current is not None:
            current.cancel()
        if kind == "unsubscribe":
            self.send({"type": "unsubscribed", "topic": topic, "pid": pid})
            return
        scope = self.subscriptions[key] = trio.CancelScope()
        follow = self._events if topic == "events" else self._output
        self.nursery.start_soon(follow, scope, pid)

    async def _events(self, scope: trio.CancelScope, _pid: int | None) -> None:
        with scope:
            try:
                async with self.link.stream("sys.events", {}) as stream:
                    self.send({"type": "subscribed", "topic": "events"})
                    async for event in stream:
                        self.send({"type": "event", **event})
            except abi.SyscallError as exc:
                self.error(f"kernel events: {exc}", status_of(exc)[1], topic="events")

    async def _output(self, scope: trio.CancelScope, pid: int | None) -> None:
        with scope:
            try:
                args = {"pid": pid, "follow": True}
                async with self.link.stream("proc.output", args) as stream:
                    self.send({"type": "subscribed", "topic": "output", "pid": pid})
                    async for item in stream:
                        self.send({"type": "output", "pid": pid, **item})
            except abi.SyscallError as exc:
                self.error(f"output of {pid}: {exc}", status_of(exc)[1], topic="output", pid=pid)


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    msg = f"{type(value).__name__} is not JSON"
    raise TypeError(msg)


def _origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    if origin is None:  # not a browser: the token is what counts
        return True
    if origin in allowed:
        return True
    return host is not None and urllib.parse.urlsplit(origin).netloc == host


def stream_routes(
    link: KernelLink,
    tokens: Tokens,
    registry: ServiceRegistry,
    contexts: ServiceContexts,
    *,
    cors_origins: list[str],
) -> Blueprint:
    """The WebSocket route."""
    routes = Blueprint("stream", __name__)

    @routes.websocket("/stream")
    async def stream() -> None:
        presented = websocket.args.get("token")
        header = websocket.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            presented = header[7:].strip()
        if not presented or tokens.role_of(presented) is None:
            await websocket.close(_POLICY, "a valid token is required (?token=...)")
            return
        if not _origin_allowed(
            websocket.headers.get("Origin"), websocket.headers.get("Host"), cors_origins
        ):
            await websocket.close(_POLICY, "origin not allowed")
            return
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            connection = _Connection(nursery, link, registry, contexts)
            nursery.start_soon(connection.pump)
            connection.send(
                {"type": "system", "message": "connected", "version": installed_version()}
            )
            nursery.start_soon(connection.read)
        if connection.too_slow:
            logger.warning("closed a WebSocket whose client read too slowly")
            await websocket.close(_TOO_SLOW, "too slow: messages were piling up")

    return routes
