"""Sessions: a whole workspace saved to disk and restored, parents before children.

A session holds every running app (its Blueprint, parent, state, window, component
state), which one had the focus, and the desktop's chat and UI state. Each is one file
written atomically, so a crash during a save leaves every earlier session whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from pathlib import Path

import trio
from pydantic import BaseModel, Field, JsonValue, ValidationError

from orchestrator.apps import App, AppManager, AppState
from orchestrator.blueprint import parse_blueprint
from sandbox.errors import NotFoundError
from sandbox.fsutil import atomic_write

__all__ = ["SESSION_ID_PATTERN", "Session", "SessionStore", "SessionSummary", "Workspace"]

logger = logging.getLogger("agentos.orchestrator.sessions")

SESSION_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,127}$"
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
        self.last_saved: float | None = None
        self.last_restored: float | None = None
        self._lock = trio.Lock()

    def _path(self, session_id: str) -> Path:
        if not re.fullmatch(SESSION_ID_PATTERN, session_id):
            msg = f"no session {session_id!r}"
            raise NotFoundError(msg)
        return self.directory / f"{session_id}{_SUFFIX}"

    def _read_all(self) -> list[Session]:
        sessions: list[Session] = []
        if not self.directory.is_dir():
            return sessions
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            try:
                sessions.append(Session.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError) as exc:
                logger.warning("skipping unreadable session %s: %s", path, exc)
        return sessions

    async def all(self) -> list[Session]:
        """Every session, oldest first, read from disk."""
        sessions = await trio.to_thread.run_sync(self._read_all)
        return sorted(sessions, key=lambda s: s.created_at)

    async def get(self, session_id: str) -> Session:
        """One session.

        Raises:
            NotFoundError: there is none.
        """
        try:
            data = await trio.Path(self._path(session_id)).read_bytes()
        except FileNotFoundError:
            msg = f"no session {session_id!r}"
            raise NotFoundError(msg) from None
        return Session.model_validate_json(data)

    def _new_id(self, now: float) -> str:
        stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%Y%m%d-%H%M%S")
        candidate, n = f"session-{stamp}", 1
        while self._path(candidate).exists():
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
            data = session.model_dump_json().encode()
            await trio.to_thread.run_sync(self._write, self._path(session_id), data)
            self.last_saved = now
        logger.info("saved session %s (%d apps)", session_id, len(workspace.apps))
        return session

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, data, mode=0o600)

    async def delete(self, session_id: str) -> None:
        """Remove a session.

        Raises:
            NotFoundError: there is none.
        """
        try:
            await trio.Path(self._path(session_id)).unlink()
        except FileNotFoundError:
            msg = f"no session {session_id!r}"
            raise NotFoundError(msg) from None


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
