"""The web tier as a trio service: Hypercorn's trio worker serving the app, plus the kernel link."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

from orchestrator.app import create_app
from orchestrator.auth import Tokens, load_tokens
from orchestrator.config import OrchestratorSettings
from orchestrator.kernel_link import KernelLink
from sandbox.errors import UnavailableError

__all__ = ["OrchestratorHandle", "OrchestratorService", "bind_address"]

logger = logging.getLogger("agentos.orchestrator")


@dataclass(frozen=True)
class OrchestratorHandle:
    """What a started orchestrator hands its starter."""

    urls: list[str]
    tokens: Tokens
    link: KernelLink

    @property
    def url(self) -> str:
        """The first bound URL, with no trailing slash."""
        return self.urls[0].rstrip("/")

    @property
    def desktop_url(self) -> str:
        """The URL to open in a browser, token included."""
        return f"{self.url}/?token={self.tokens.user}"


def bind_address(host: str, port: int) -> str:
    """Hypercorn's bind string for a host and port (IPv6 hosts bracketed)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OrchestratorService:
    """Serves the HTTP/WebSocket API until :meth:`shutdown` or cancellation.

    Shutdown through :meth:`shutdown` is graceful: Hypercorn stops accepting, finishes
    requests in flight and runs the app's shutdown hooks before ``run`` returns.
    """

    def __init__(self, settings: OrchestratorSettings) -> None:
        self._settings = settings
        self._shutdown = trio.Event()

    def shutdown(self) -> None:
        """Begin a graceful shutdown."""
        self._shutdown.set()

    def _load_tokens(self) -> Tokens:
        settings = self._settings
        settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return load_tokens(settings.state_dir, user=settings.token, admin=settings.admin_token)

    def _hypercorn_config(self) -> HypercornConfig:
        settings = self._settings
        config = HypercornConfig()
        config.bind = [bind_address(settings.host, settings.port)]
        config.accesslog = logging.getLogger("agentos.http.access") if settings.access_log else None
        config.errorlog = logging.getLogger("agentos.http")
        config.graceful_timeout = 5.0
        return config

    async def run(
        self, *, task_status: trio.TaskStatus[OrchestratorHandle] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until shut down; the handshake value carries the bound URLs and tokens."""
        settings = self._settings
        tokens = await trio.to_thread.run_sync(self._load_tokens)
        link = KernelLink(settings.kernel_socket_path())
        app = create_app(settings, link=link, tokens=tokens)
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            urls = await nursery.start(
                functools.partial(self._serve, app, self._hypercorn_config(), nursery.cancel_scope)
            )
            logger.info("serving on %s (kernel socket %s)", ", ".join(urls), link.socket)
            task_status.started(OrchestratorHandle(urls=urls, tokens=tokens, link=link))

    async def _serve(
        self,
        app: QuartTrio,
        config: HypercornConfig,
        done: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[list[str]],
    ) -> None:
        try:
            await serve(app, config, shutdown_trigger=self._shutdown.wait, task_status=task_status)
        except* OSError as group:
            # Binding failed (Hypercorn raises it from its own nursery, hence the group).
            first: BaseException = group
            while isinstance(first, BaseExceptionGroup):  # nested, one per nursery
                first = first.exceptions[0]
            reason = first.strerror if isinstance(first, OSError) and first.strerror else first
            msg = f"cannot listen on {', '.join(config.bind)}: {str(reason).lower()}"
            raise UnavailableError(msg) from group
        finally:
            done.cancel()  # the HTTP server is gone: stop the kernel link with it
            logger.info("web tier stopped")
