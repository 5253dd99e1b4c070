"""The orchestrator's connection to the kernel, kept open and re-established when it drops."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from kernel.client import CallStream, KernelClient, abi, open_kernel_client

__all__ = ["KernelLink"]

logger = logging.getLogger("agentos.orchestrator.kernel")

ArgsT = TypeVar("ArgsT", bound=abi.WireModel)
ResultT = TypeVar("ResultT", bound=abi.WireModel)


class KernelLink:
    """Keeps one kernel connection for the whole web tier, reconnecting with backoff.

    Calls made while the kernel is unreachable fail at once with
    ``SyscallUnavailableError`` rather than waiting for it to come back.
    """

    def __init__(
        self, socket: Path, *, min_backoff: float = 0.05, max_backoff: float = 2.0
    ) -> None:
        self.socket = socket
        self._client: KernelClient | None = None
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._changed = trio.Event()

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now."""
        return self._client is not None and not self._client.closed

    async def wait_connected(self) -> None:
        """Return once a connection is open."""
        while not self.connected:
            await self._changed.wait()

    def _set(self, client: KernelClient | None) -> None:
        self._client = client
        self._changed.set()
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, and reconnect whenever the connection ends, until cancelled."""
        task_status.started()
        backoff = self._min_backoff
        reported = False
        while True:
            try:
                async with open_kernel_client(self.socket) as client:
                    await client.invoke(abi.system.SYS_PING)
                    logger.info("connected to the kernel at %s", self.socket)
                    self._set(client)
                    backoff, reported = self._min_backoff, False
                    await client.wait_closed()
                    logger.warning("lost the kernel connection; reconnecting")
            except abi.SyscallError as exc:
                if not reported:
                    logger.warning("kernel not reachable (%s); retrying", exc)
                    reported = True
            except Exception:
                # A bug, not an outage; the web tier keeps serving and keeps trying.
                logger.exception("kernel connection failed unexpectedly; retrying")
            finally:
                self._set(None)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _current(self) -> KernelClient:
        if self._client is None or self._client.closed:
            msg = f"the kernel is not connected (socket {self.socket})"
            raise abi.SyscallUnavailableError(msg, code=abi.ErrorCode.ECONNREFUSED)
        return self._client

    async def call(
        self, name: str, args: dict[str, Any] | None = None, *, as_pid: int | None = None
    ) -> Any:
        """Make a raw call on the current connection (as process ``as_pid`` if given)."""
        return await self._current().call(name, args, as_pid=as_pid)

    async def invoke(
        self,
        spec: abi.CallSpec[ArgsT, ResultT],
        args: ArgsT | None = None,
        *,
        as_pid: int | None = None,
    ) -> ResultT:
        """Make a typed call on the current connection (as process ``as_pid`` if given)."""
        return await self._current().invoke(spec, args, as_pid=as_pid)

    @asynccontextmanager
    async def stream(
        self, name: str, args: dict[str, Any] | None = None, *, as_pid: int | None = None
    ) -> AsyncIterator[CallStream]:
        """Make a streaming call on the current connection; iterate for its items."""
        async with self._current().stream(name, args, as_pid=as_pid) as stream:
            yield stream
