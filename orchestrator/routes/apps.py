"""``/apps``: launch, list, focus, minimise, place, keep state of, and close running apps."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field, JsonValue
from quart import Blueprint as Routes
from quart_schema import validate_request, validate_response

from orchestrator.apps import MAX_STATE_BYTES, App, AppManager, AppsStats, Window
from orchestrator.blueprint import APP_ID_PATTERN, parse_blueprint
from orchestrator.services import ServiceRegistry
from sandbox.errors import InvalidArgumentError

__all__ = ["AppsList", "LaunchRequest", "StateBody", "Success", "apps_routes"]

_ID = re.compile(APP_ID_PATTERN)


class AppsList(BaseModel):
    """``GET /apps``."""

    apps: list[App]
    stats: AppsStats


class LaunchRequest(BaseModel):
    """``POST /apps``: a Blueprint to run."""

    blueprint: dict[str, Any] = Field(description="the spec, in any accepted form")
    parent_id: str | None = Field(default=None, pattern=_ID.pattern)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class Success(BaseModel):
    """The original's acknowledgement."""

    success: bool
    app_id: str
    closed: list[str] = Field(default_factory=list)


class StateBody(BaseModel):
    """An app's component state."""

    state: dict[str, JsonValue]


def _checked(app_id: str) -> str:
    if not _ID.fullmatch(app_id):
        msg = f"not an app id: {app_id!r}"
        raise InvalidArgumentError(msg)
    return app_id


def apps_routes(apps: AppManager, registry: ServiceRegistry) -> Routes:
    """The app routes over an app manager; Blueprints may bind the registry's tools."""
    routes = Routes("apps", __name__, url_prefix="/apps")

    @routes.get("")
    @validate_response(AppsList)
    async def listing() -> AppsList:
        """Every running app, with counts and the focus."""
        return AppsList(apps=apps.running(), stats=apps.stats())

    @routes.post("")
    @validate_request(LaunchRequest)
    @validate_response(App, 201)
    async def launch(data: LaunchRequest) -> tuple[App, int]:
        """Run a Blueprint: a kernel process under the policy it asks for, if allowed."""
        blueprint = parse_blueprint(data.blueprint, server_tools=registry.tool_ids())
        app = await apps.launch(blueprint, parent_id=data.parent_id, metadata=data.metadata)
        return app, 201

    @routes.post("/<app_id>/focus")
    @validate_response(Success)
    async def focus(app_id: str) -> Success:
        """Bring an app to the front."""
        app = await apps.focus(_checked(app_id))
        return Success(success=True, app_id=app.id)

    @routes.post("/<app_id>/minimise")
    @validate_response(App)
    async def minimise(app_id: str) -> App:
        """Send an app to the background (throttled, or frozen if so configured)."""
        return await apps.minimise(_checked(app_id))

    @routes.post("/<app_id>/window")
    @validate_request(Window)
    @validate_response(Success)
    async def window(app_id: str, data: Window) -> Success:
        """Keep an app's window id, position and size."""
        app = apps.set_window(_checked(app_id), data)
        return Success(success=True, app_id=app.id)

    @routes.delete("/<app_id>")
    @validate_response(Success)
    async def close(app_id: str) -> Success:
        """Close an app and the apps it opened; their kernel resources are released."""
        closed = await apps.close(_checked(app_id))
        return Success(success=True, app_id=app_id, closed=closed)

    @routes.get("/<app_id>/state")
    @validate_response(StateBody)
    async def get_state(app_id: str) -> StateBody:
        """An app's component state."""
        return StateBody(state=apps.component_state(_checked(app_id)))

    @routes.put("/<app_id>/state")
    @validate_request(StateBody)
    @validate_response(Success)
    async def put_state(app_id: str, data: StateBody) -> Success:
        """Replace an app's component state (at most 1 MiB of JSON)."""
        if len(json.dumps(data.state)) > MAX_STATE_BYTES:
            msg = f"component state over {MAX_STATE_BYTES} bytes"
            raise InvalidArgumentError(msg)
        app = apps.set_component_state(_checked(app_id), data.state)
        return Success(success=True, app_id=app.id)

    return routes
