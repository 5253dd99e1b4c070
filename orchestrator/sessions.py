"""Sessions: a whole workspace saved to disk and restored, parents before children.

A session holds every running app (its Blueprint, parent, state, window, component
state), which one had the focus, and the desktop's chat and UI state. Each is one file
written atomically, so a crash during a save leaves every earlier session whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from pathlib import Path

import trio
from pydantic import BaseModel, Field, JsonValue

from orchestrator.apps import App, AppManager, AppState
from orchestrator.blueprint import parse_blueprint
from orchestrator.records import RECORD_ID_PATTERN, RecordDirectory
from sandbox.errors import NotFoundError

__all__ = ["SESSION_ID_PATTERN", "Session", "SessionStore", "SessionSummary", "Workspace"]

logger = logging.getLogger("agentos.orchestrator.sessions")

SESSION_ID_PATTERN = RECORD_ID_PATTERN
_SUFFIX = ".session"


class Workspace(BaseModel):
    """What a session restores."""

    apps: list[App]
    focused_app_id: str | None = None
    focused_app_hash: str | None = None
    chat_state: dict[str, JsonValue] = Field(default_factory=dict)
    ui_state: dict[str, JsonValue] = Field(default_factory=dict)


class SessionSummary(BaseModel):
    """A session as listed."""

    id: str
    name: str
    description: str = ""
    created_at: float
    updated_at: float
    app_count: int


class Session(BaseModel):
    """A saved workspace."""

    id: str
    name: str
    description: str = ""
    created_at: float
    updated_at: float
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    workspace: Workspace

    def summary(self) -> SessionSummary:
        """The session without its workspace."""
        return SessionSummary(
            id=self.id, name=self.name, description=self.description,
            created_at=self.created_at, updated_at=self.updated_at,
            app_count=len(self.workspace.apps),
        )  # fmt: skip


def parents_first(apps: list[App]) -> list[App]:
    """``apps`` ordered so that each comes after its parent (orphans count as tops)."""
    ids = {a.id for a in apps}
    ordered: list[App] = []
    placed: set[str] = set()
    pending = sorted(apps, key=lambda a: a.created_at)
    while pending:
        ready = [a for a in pending if a.parent_id is None or a.parent_id not in ids
                 or a.parent_id in placed]  # fmt: skip
        if not ready:  # a cycle cannot come from a real workspace; break it anyway
            ready = pending[:1]
        for app in ready:
            ordered.append(app)
            placed.add(app.id)
        pending = [a for a in pending if a.id not in placed]
    return ordered


class SessionStore:
    """Sessions in ``directory``, one file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files = RecordDirectory(directory, Session, suffix=_SUFFIX, kind="session")
        self.last_saved: float | None = None
        self.last_restored: float | None = None
        self._lock = trio.Lock()

    async def all(self) -> list[Session]:
        """Every session, oldest first, read from disk."""
        return sorted(await self._files.read_all(), key=lambda s: s.created_at)

    async def get(self, session_id: str) -> Session:
        """One session.

        Raises:
            NotFoundError: there is none.
        """
        return await self._files.read(session_id)

    def _new_id(self, now: float) -> str:
        stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%Y%m%d-%H%M%S")
        candidate, n = f"session-{stamp}", 1
        while self._files.exists(candidate):
            n += 1
            candidate = f"session-{stamp}-{n}"
        return candidate

    async def save(
        self,
        workspace: Workspace,
        *,
        name: str,
        description: str = "",
        session_id: str | None = None,
    ) -> Session:
        """Keep ``workspace`` (as ``session_id``, replacing it, or as a new session)."""
        now = time.time()
        async with self._lock:
            created = now
            if session_id is not None:
                with contextlib.suppress(NotFoundError):  # a new one: born now
                    created = (await self.get(session_id)).created_at
            else:
                session_id = await trio.to_thread.run_sync(self._new_id, now)
            session = Session(
                id=session_id, name=name, description=description, created_at=created,
                updated_at=now, workspace=workspace,
            )  # fmt: skip
            await self._files.write(session_id, session)
            self.last_saved = now
        logger.info("saved session %s (%d apps)", session_id, len(workspace.apps))
        return session

    async def delete(self, session_id: str) -> None:
        """Remove a session.

        Raises:
            NotFoundError: there is none.
        """
        await self._files.delete(session_id)


def capture(
    apps: AppManager,
    *,
    app_states: dict[str, dict[str, JsonValue]],
    chat_state: dict[str, JsonValue],
    ui_state: dict[str, JsonValue],
) -> Workspace:
    """The workspace now; ``app_states`` (the desktop's, fresher) replace the kept ones."""
    running = [
        app.model_copy(update={"component_state": app_states.get(app.id, app.component_state)})
        for app in apps.running()
    ]
    focused = apps.get(apps.focused) if apps.focused else None
    return Workspace(
        apps=running, focused_app_id=focused.id if focused else None,
        focused_app_hash=focused.hash if focused else None, chat_state=chat_state,
        ui_state=ui_state,
    )  # fmt: skip


async def restore(apps: AppManager, workspace: Workspace, server_tools: list[str]) -> Workspace:
    """Close the running apps, then start the session's, parents first; the new workspace.

    Each app gets its component state and window back; minimised ones go back to the
    background; the app that had the focus (by id, else by Blueprint) gets it again.
    """
    while running := apps.running():  # each close takes the app's children with it
        await apps.close(running[0].id)
    new_ids: dict[str, str] = {}
    for old in parents_first(workspace.apps):
        blueprint = parse_blueprint(old.ui_spec, server_tools=server_tools)
        parent = new_ids.get(old.parent_id) if old.parent_id else None
        app = await apps.launch(blueprint, parent_id=parent, metadata=old.metadata)
        new_ids[old.id] = app.id
        apps.set_component_state(app.id, old.component_state)
        if old.window is not None:
            apps.set_window(app.id, old.window)
        if old.state in (AppState.BACKGROUND, AppState.SUSPENDED):
            await apps.minimise(app.id)
    target = new_ids.get(workspace.focused_app_id or "")
    if target is None and workspace.focused_app_hash:
        target = next((a.id for a in apps.running() if a.hash == workspace.focused_app_hash), None)
    if target is not None:
        await apps.focus(target)
    focused = apps.get(apps.focused) if apps.focused else None
    return Workspace(
        apps=apps.running(), focused_app_id=focused.id if focused else None,
        focused_app_hash=focused.hash if focused else None,
        chat_state=workspace.chat_state, ui_state=workspace.ui_state,
    )  # fmt: skip
