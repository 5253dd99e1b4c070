"""``/registry``: save a running app as a package, list, read, launch and delete packages."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field
from quart import Blueprint as Routes
from quart_schema import validate_querystring, validate_request, validate_response

from orchestrator.apps import AppManager
from orchestrator.blueprint import APP_ID_PATTERN, parse_blueprint
from orchestrator.registry import Package, PackageSummary, Registry, RegistryStats
from orchestrator.services import ServiceRegistry

__all__ = [
    "CategoryQuery",
    "LaunchResult",
    "PackageList",
    "SaveRequest",
    "SaveResult",
    "registry_routes",
]


class SaveRequest(BaseModel):
    """``POST /registry/save``: a running app, and how to show it."""

    app_id: str = Field(pattern=APP_ID_PATTERN)
    description: str | None = Field(default=None, max_length=4000)
    icon: str | None = Field(default=None, max_length=10)
    category: str | None = Field(default=None, max_length=64)
    tags: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(
        default=None, max_length=20
    )


class SaveResult(BaseModel):
    """The package saved."""

    success: bool
    package_id: str


class CategoryQuery(BaseModel):
    """Query of ``GET /registry/apps``."""

    category: str | None = Field(default=None, max_length=64)


class PackageList(BaseModel):
    """``GET /registry/apps``."""

    apps: list[PackageSummary]
    stats: RegistryStats


class LaunchResult(BaseModel):
    """A package launched."""

    app_id: str
    blueprint: dict[str, Any]
    title: str


def registry_routes(registry: Registry, apps: AppManager, services: ServiceRegistry) -> Routes:
    """The registry routes."""
    routes = Routes("registry", __name__, url_prefix="/registry")

    @routes.post("/save")
    @validate_request(SaveRequest)
    @validate_response(SaveResult)
    async def save(data: SaveRequest) -> SaveResult:
        """Keep a running app's Blueprint as a package (id: its name and the day)."""
        blueprint = parse_blueprint(apps.get(data.app_id).ui_spec, server_tools=services.tool_ids())
        package = await registry.save(
            blueprint, description=data.description, icon=data.icon, category=data.category,
            tags=data.tags,
        )  # fmt: skip
        return SaveResult(success=True, package_id=package.id)

    @routes.get("/apps")
    @validate_querystring(CategoryQuery)
    @validate_response(PackageList)
    async def listing(query_args: CategoryQuery) -> PackageList:
        """Every package (of a category), read from disk."""
        packages = await registry.all(query_args.category)
        return PackageList(apps=[p.summary() for p in packages], stats=await registry.stats())

    @routes.get("/apps/<package_id>")
    @validate_response(Package)
    async def read(package_id: str) -> Package:
        """One package, with its Blueprint."""
        return await registry.get(package_id)

    @routes.post("/apps/<package_id>/launch")
    @validate_response(LaunchResult)
    async def launch(package_id: str) -> LaunchResult:
        """Run a package as a new app."""
        package = await registry.get(package_id)
        blueprint = parse_blueprint(package.blueprint, server_tools=services.tool_ids())
        app = await apps.launch(blueprint, metadata={"package_id": package.id})
        return LaunchResult(app_id=app.id, blueprint=app.ui_spec, title=app.title)

    @routes.delete("/apps/<package_id>")
    @validate_response(SaveResult)
    async def delete(package_id: str) -> SaveResult:
        """Remove a package."""
        await registry.delete(package_id)
        return SaveResult(success=True, package_id=package_id)

    return routes
