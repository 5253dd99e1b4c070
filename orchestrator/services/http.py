"""``http.*``: HTTP requests the kernel makes as the app's own process (``net.request``).

So they reach only what the app's policy network allows (``none``: nothing; ``egress``:
public addresses; ``allowlist``: its CIDR:port rules), redirects included, and need the
app to hold ``network_access``.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any, Literal

from pydantic import Field, JsonValue

from orchestrator.services._registry import Params, Service, ServiceContext, Tool

__all__ = ["http_service"]

_URL = Field(min_length=8, max_length=8192, pattern=r"^https?://", description="http(s) URL")


class _Get(Params):
    url: str = _URL
    headers: dict[str, str] = Field(default_factory=dict, max_length=100)
    timeout: float = Field(default=30.0, gt=0, le=300)
    follow_redirects: bool = True


class _Post(_Get):
    json_body: JsonValue = Field(default=None, alias="json", description="sent as JSON")
    body: str | None = Field(default=None, max_length=8 << 20, description="sent as text")


class _Request(_Get):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    body: str = Field(default="", max_length=12 << 20, description="text, or base64")
    encoding: Literal["utf-8", "base64"] = "utf-8"


async def _send(
    ctx: ServiceContext, method: str, params: _Get, body: bytes, headers: dict[str, str]
) -> Any:
    result = await ctx.call(
        "net.request",
        {
            "method": method, "url": params.url, "headers": list(headers.items()),
            "body": body, "timeout": params.timeout,
            "follow_redirects": params.follow_redirects,
        },
    )  # fmt: skip
    raw: bytes = result["body"]
    answer: dict[str, Any] = {
        "status": result["status"], "headers": dict(result["headers"]), "url": result["url"],
    }  # fmt: skip
    try:
        answer["body"] = raw.decode()
    except UnicodeDecodeError:
        answer["body"], answer["encoding"] = base64.b64encode(raw).decode(), "base64"
    content_type = {k.lower(): v for k, v in answer["headers"].items()}.get("content-type", "")
    if "json" in content_type and "encoding" not in answer:
        with contextlib.suppress(ValueError):
            answer["json"] = json.loads(answer["body"])
    return answer


async def _get(ctx: ServiceContext, params: _Get) -> Any:
    return await _send(ctx, "GET", params, b"", params.headers)


async def _post(ctx: ServiceContext, params: _Post) -> Any:
    headers = dict(params.headers)
    if params.body is not None:
        body = params.body.encode()
    else:
        body = json.dumps(params.json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    return await _send(ctx, "POST", params, body, headers)


async def _request(ctx: ServiceContext, params: _Request) -> Any:
    body = base64.b64decode(params.body) if params.encoding == "base64" else params.body.encode()
    return await _send(ctx, params.method, params, body, params.headers)


def http_service() -> Service:
    """The ``http`` service."""
    returns = "{status, headers, body, url, json?, encoding?}"
    return Service(
        id="http", name="Web requests", category="network",
        description="HTTP requests from the app, where its policy's network allows.",
        capabilities=("network_access",),
        tools=(
            Tool("http.get", "GET a URL.", _Get, returns, _get),
            Tool("http.post", "POST JSON (or text) to a URL.", _Post, returns, _post),
            Tool("http.request", "Any HTTP request.", _Request, returns, _request),
        ),
    )  # fmt: skip
