"""``GET /`` (status for API clients, the desktop for browsers) and ``GET /health``."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Literal

import trio
from pydantic import BaseModel
from quart import Blueprint, Response, request, send_file
from quart_schema import validate_response

from kernel.client import abi
from orchestrator.auth import public
from orchestrator.kernel_link import KernelLink

__all__ = ["HealthResponse", "KernelHealth", "RootStatus", "status_routes"]

_PING_TIMEOUT = 1.0

_NO_DESKTOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AgentOS</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>AgentOS {version}</h1>
<p>The server is running, but the web desktop has not been built
(no <code>index.html</code> in <code>{frontend}</code>).
Run <code>make setup</code> in the AgentOS checkout to build it.</p>
<p>The API is available: see <code>GET /health</code>.</p>
</body></html>
"""


class RootStatus(BaseModel):
    """``GET /`` for API clients, as the original system answered it."""

    status: Literal["online"]
    service: str
    version: str


class KernelHealth(BaseModel):
    """The kernel's part of ``/health``."""

    connected: bool


class HealthResponse(BaseModel):
    """``GET /health``: ``healthy`` only when every part this server needs answers."""

    status: Literal["healthy", "degraded"]
    service: str
    version: str
    kernel: KernelHealth


def status_routes(link: KernelLink, *, version: str, frontend_dir: Path | None) -> Blueprint:
    """The status routes, bound to this server's kernel link and desktop build."""
    routes = Blueprint("status", __name__)
    index = frontend_dir / "index.html" if frontend_dir else None

    @routes.get("/")
    @public
    async def root() -> Response | dict[str, str]:
        best = request.accept_mimetypes.best_match(["application/json", "text/html"])
        if best != "text/html":
            return RootStatus(status="online", service="AgentOS", version=version).model_dump()
        if index is not None and index.is_file():
            return await send_file(index, mimetype="text/html")
        page = _NO_DESKTOP_PAGE.format(
            version=html.escape(version), frontend=html.escape(str(frontend_dir or "frontend/dist"))
        )
        return Response(page, mimetype="text/html")

    @routes.get("/health")
    @public
    @validate_response(HealthResponse)
    async def health() -> HealthResponse:
        connected = False
        if link.connected:
            with trio.move_on_after(_PING_TIMEOUT):
                try:
                    await link.invoke(abi.system.SYS_PING)
                    connected = True
                except abi.SyscallError:
                    connected = False
        return HealthResponse(
            status="healthy" if connected else "degraded",
            service="AgentOS",
            version=version,
            kernel=KernelHealth(connected=connected),
        )

    return routes
