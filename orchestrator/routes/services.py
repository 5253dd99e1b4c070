"""``/services``: the catalog of typed tools, discovery by words, and running a tool."""

from __future__ import annotations

import collections
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from orchestrator.blueprint import APP_ID_PATTERN
from orchestrator.services import ServiceContexts, ServiceInfo, ServiceRegistry

__all__ = [
    "DiscoverRequest",
    "DiscoverResult",
    "ExecuteRequest",
    "ExecuteResult",
    "ServicesQuery",
    "ServicesResult",
    "services_routes",
]


class ServicesQuery(BaseModel):
    """Query of ``GET /services``."""

    category: str | None = Field(default=None, max_length=64)


class ServicesStats(BaseModel):
    """Counts over the whole catalog."""

    total_services: int
    total_tools: int
    categories: dict[str, int] = Field(description="services per category")


class ServicesResult(BaseModel):
    """``GET /services``."""

    services: list[ServiceInfo]
    stats: ServicesStats


class DiscoverRequest(BaseModel):
    """``POST /services/discover``."""

    message: str = Field(min_length=1, max_length=16 * 1024)


class DiscoverResult(BaseModel):
    """The services that best match the words (at most 5)."""

    query: str
    services: list[ServiceInfo]


class ExecuteRequest(BaseModel):
    """``POST /services/execute``."""

    tool_id: str = Field(min_length=3, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)
    app_id: str | None = Field(
        default=None, pattern=APP_ID_PATTERN, description="the app it runs for (its process)"
    )


class ExecuteResult(BaseModel):
    """A tool's result; a failure is an error answer (``{"error": {...}}``) instead."""

    success: bool
    data: Any = None


def services_routes(registry: ServiceRegistry, contexts: ServiceContexts) -> Blueprint:
    """The services routes over a registry, acting through ``contexts``."""
    routes = Blueprint("services", __name__, url_prefix="/services")

    @routes.get("")
    @validate_querystring(ServicesQuery)
    @validate_response(ServicesResult)
    async def catalog(query_args: ServicesQuery) -> ServicesResult:
        """Every service (of a category) with each tool's parameter schema."""
        everything = registry.services()
        return ServicesResult(
            services=[s.info() for s in registry.services(query_args.category)],
            stats=ServicesStats(
                total_services=len(everything),
                total_tools=len(registry.tool_ids()),
                categories=dict(collections.Counter(s.category for s in everything)),
            ),
        )

    @routes.post("/discover")
    @validate_request(DiscoverRequest)
    @validate_response(DiscoverResult)
    async def discover(data: DiscoverRequest) -> DiscoverResult:
        """The services whose words best match a message."""
        found = registry.discover(data.message)
        return DiscoverResult(query=data.message, services=[s.info() for s in found])

    @routes.post("/execute")
    @validate_request(ExecuteRequest)
    @validate_response(ExecuteResult)
    async def execute(data: ExecuteRequest) -> ExecuteResult:
        """Run a tool as the app's own kernel process (the desktop's without an app)."""
        registry.tool(data.tool_id)  # 404 before finding whom it would run for
        ctx = await contexts.for_app(data.app_id)
        result = await registry.execute(data.tool_id, data.params, ctx)
        return ExecuteResult(success=True, data=result)

    return routes
