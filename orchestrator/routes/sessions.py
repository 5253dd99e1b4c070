"""``/sessions``: save the whole workspace, list, read, restore and delete sessions."""

from __future__ import annotations

from pydantic import BaseModel, Field, JsonValue
from quart import Blueprint as Routes
from quart_schema import validate_request, validate_response

from orchestrator.apps import AppManager
from orchestrator.services import ServiceRegistry
from orchestrator.sessions import (
    Session,
    SessionStore,
    SessionSummary,
    Workspace,
    capture,
    restore,
)

__all__ = [
    "RestoreResult",
    "SaveSessionRequest",
    "SaveSessionResult",
    "SessionList",
    "SessionStats",
    "sessions_routes",
]


class SaveSessionRequest(BaseModel):
    """``POST /sessions/save``: the desktop's own state with the name to keep it under."""

    name: str = Field(default="session", min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    chat_state: dict[str, JsonValue] = Field(default_factory=dict)
    ui_state: dict[str, JsonValue] = Field(default_factory=dict)
    app_states: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)


class SaveSessionResult(BaseModel):
    """A session saved."""

    success: bool
    session: SessionSummary


class SessionStats(BaseModel):
    """Counts over the sessions."""

    total_sessions: int
    last_saved: float | None
    last_restored: float | None


class SessionList(BaseModel):
    """``GET /sessions``."""

    sessions: list[SessionSummary]
    stats: SessionStats


class RestoreResult(BaseModel):
    """The workspace a restore made."""

    success: bool
    workspace: Workspace


class Deleted(BaseModel):
    """A session removed."""

    success: bool
    session_id: str


def sessions_routes(store: SessionStore, apps: AppManager, services: ServiceRegistry) -> Routes:
    """The session routes."""
    routes = Routes("sessions", __name__, url_prefix="/sessions")

    async def save_as(data: SaveSessionRequest, session_id: str | None) -> SaveSessionResult:
        workspace = capture(
            apps, app_states=data.app_states, chat_state=data.chat_state, ui_state=data.ui_state
        )
        session = await store.save(
            workspace, name=data.name, description=data.description, session_id=session_id
        )
        return SaveSessionResult(success=True, session=session.summary())

    @routes.post("/save")
    @validate_request(SaveSessionRequest)
    @validate_response(SaveSessionResult)
    async def save(data: SaveSessionRequest) -> SaveSessionResult:
        """Keep the workspace as a new session."""
        return await save_as(data, None)

    @routes.post("/save-default")
    @validate_request(SaveSessionRequest)
    @validate_response(SaveSessionResult)
    async def save_default(data: SaveSessionRequest) -> SaveSessionResult:
        """Keep the workspace as the session ``default`` (replacing it)."""
        return await save_as(data.model_copy(update={"name": "default"}), "default")

    @routes.get("")
    @validate_response(SessionList)
    async def listing() -> SessionList:
        """Every session, oldest first, from disk."""
        sessions = await store.all()
        return SessionList(
            sessions=[s.summary() for s in sessions],
            stats=SessionStats(
                total_sessions=len(sessions), last_saved=store.last_saved,
                last_restored=store.last_restored,
            ),
        )  # fmt: skip

    @routes.get("/<session_id>")
    @validate_response(Session)
    async def read(session_id: str) -> Session:
        """One session, whole."""
        return await store.get(session_id)

    @routes.post("/<session_id>/restore")
    @validate_response(RestoreResult)
    async def restore_session(session_id: str) -> RestoreResult:
        """Close the running apps and start the session's, parents first."""
        session = await store.get(session_id)
        workspace = await restore(apps, session.workspace, services.tool_ids())
        store.last_restored = session.updated_at
        return RestoreResult(success=True, workspace=workspace)

    @routes.delete("/<session_id>")
    @validate_response(Deleted)
    async def delete(session_id: str) -> Deleted:
        """Remove a session."""
        await store.delete(session_id)
        return Deleted(success=True, session_id=session_id)

    return routes
