"""Running apps: each a kernel process under the policy its Blueprint asks for.

An app instance has its own id (a UUID) and runs as one kernel process whose app id is its
Blueprint's ``app.id``, so every instance of an app shares the app's files
(``/storage/apps/<app.id>``). With a ``process`` section the process runs that command in
a container; without, it is a kernel process holding the app's grants, which its tools
act as. States: spawning, active (focused or shown), background (minimised), suspended
(frozen), destroyed. Closing an app closes its children first and ends its process, which
releases everything the kernel held for it.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
import uuid
from collections.abc import Collection
from typing import Any

import trio
from pydantic import BaseModel, Field, JsonValue

from kernel.client import abi
from orchestrator.blueprint import Blueprint
from orchestrator.kernel_link import KernelLink
from sandbox.errors import NotFoundError, PermissionDeniedError

__all__ = ["App", "AppManager", "AppState", "AppsStats", "Window"]

logger = logging.getLogger("agentos.orchestrator.apps")

MAX_STATE_BYTES = 1 << 20


class AppState(enum.StrEnum):
    """Where an app is in its life."""

    SPAWNING = "spawning"
    ACTIVE = "active"
    BACKGROUND = "background"
    SUSPENDED = "suspended"
    DESTROYED = "destroyed"


class Point(BaseModel):
    """A window's position."""

    x: float
    y: float


class Size(BaseModel):
    """A window's size."""

    width: float = Field(gt=0)
    height: float = Field(gt=0)


class Window(BaseModel):
    """Where the desktop shows an app."""

    window_id: str = Field(min_length=1, max_length=128)
    position: Point | None = None
    size: Size | None = None


class App(BaseModel):
    """One running app, as ``GET /apps`` lists it."""

    id: str
    hash: str = Field(description="its Blueprint's app.id: what instances of it share")
    title: str
    state: AppState
    parent_id: str | None
    created_at: float
    metadata: dict[str, JsonValue]
    services: list[str]
    sandbox_pid: int | None = Field(description="its kernel process")
    policy: str
    window: Window | None = None
    ui_spec: dict[str, Any] = Field(description="its canonical Blueprint")
    component_state: dict[str, JsonValue] = Field(default_factory=dict)


class AppsStats(BaseModel):
    """Counts over the running apps."""

    total_apps: int
    active_apps: int
    background_apps: int
    focused_app_id: str | None
    focused_app_hash: str | None


class AppManager:
    """The running apps of this orchestrator.

    Args:
        link: the kernel.
        allowed_policies: the policies an app may ask for (never wider).
        freeze_background: minimised apps with a container are frozen, not only throttled.
    """

    def __init__(
        self,
        link: KernelLink,
        *,
        allowed_policies: Collection[str] = ("minimal", "standard"),
        default_policy: str = "standard",
        freeze_background: bool = False,
    ) -> None:
        self._link = link
        self.allowed_policies = frozenset(allowed_policies)
        self.default_policy = default_policy
        self.freeze_background = freeze_background
        self._apps: dict[str, App] = {}
        self._containers: set[str] = set()
        self.focused: str | None = None
        self._lock = trio.Lock()

    def running(self) -> list[App]:
        """The running apps, oldest first."""
        return sorted(self._apps.values(), key=lambda a: a.created_at)

    def stats(self) -> AppsStats:
        """Counts, and which app has the focus."""
        apps = self._apps.values()
        focused = self._apps.get(self.focused) if self.focused else None
        return AppsStats(
            total_apps=len(apps),
            active_apps=sum(a.state is AppState.ACTIVE for a in apps),
            background_apps=sum(a.state is AppState.BACKGROUND for a in apps),
            focused_app_id=focused.id if focused else None,
            focused_app_hash=focused.hash if focused else None,
        )

    def get(self, app_id: str) -> App:
        """The running app ``app_id``.

        Raises:
            NotFoundError: there is none.
        """
        try:
            return self._apps[app_id]
        except KeyError:
            msg = f"no running app {app_id!r}"
            raise NotFoundError(msg) from None

    def _set(self, app: App, **changes: Any) -> App:
        updated = app.model_copy(update=changes)
        self._apps[app.id] = updated
        return updated

    def _policy_of(self, blueprint: Blueprint) -> str:
        wanted = blueprint.policy_name() or self.default_policy
        if wanted not in self.allowed_policies:
            allowed = ", ".join(sorted(self.allowed_policies))
            msg = f"the app asks for policy {wanted!r}; apps may have: {allowed}"
            raise PermissionDeniedError(msg)
        return wanted

    async def launch(
        self,
        blueprint: Blueprint,
        *,
        parent_id: str | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> App:
        """Start an app: its kernel process (its container, with a process section).

        Raises:
            PermissionDeniedError: it asks for a policy the administrator does not allow.
            NotFoundError: ``parent_id`` is no running app.
            SyscallError: the kernel refused (e.g. ENOMEM past the memory budget).
        """
        policy = self._policy_of(blueprint)
        parent = self.get(parent_id) if parent_id is not None else None
        app = App(
            id=uuid.uuid4().hex, hash=blueprint.app.id,
            title=blueprint.ui.title or blueprint.app.name,
            state=AppState.SPAWNING, parent_id=parent.id if parent else None,
            created_at=time.time(), metadata=metadata or {},
            services=[s.name for s in blueprint.services], sandbox_pid=None, policy=policy,
            ui_spec=blueprint.to_json(),
        )  # fmt: skip
        self._apps[app.id] = app
        args: dict[str, Any] = {"name": _process_name(blueprint), "app_id": blueprint.app.id}
        args["policy"] = policy
        if parent is not None and parent.sandbox_pid is not None:
            args["parent"] = parent.sandbox_pid
        if blueprint.process is not None:
            command: dict[str, Any] = {"argv": blueprint.process.command}
            if blueprint.process.env:
                command["env"] = blueprint.process.env
            if blueprint.process.workdir:
                command["cwd"] = blueprint.process.workdir
            args["command"] = command
        try:
            info = await self._link.call("proc.spawn", args)
        except BaseException:
            self._apps.pop(app.id, None)
            raise
        if blueprint.process is not None:
            self._containers.add(app.id)
        app = self._set(app, sandbox_pid=info["pid"])
        logger.info("app %s (%s) runs as pid %d under %s", app.id, app.hash, info["pid"], policy)
        return await self.focus(app.id)

    async def focus(self, app_id: str) -> App:
        """Bring an app to the front: it is active and boosted; the one before stays active."""
        app = self.get(app_id)
        async with self._lock:
            if app.state is AppState.SUSPENDED and app.sandbox_pid is not None:
                await self._link.call("proc.resume", {"pid": app.sandbox_pid})
            if app.id in self._containers and app.sandbox_pid is not None:
                await self._link.call(
                    "sched.background", {"pid": app.sandbox_pid, "background": False}
                )
                await self._link.call("sched.focus", {"pid": app.sandbox_pid})
            self.focused = app.id
            return self._set(self.get(app_id), state=AppState.ACTIVE)

    async def minimise(self, app_id: str) -> App:
        """Send an app to the background: throttled, or frozen if so configured."""
        app = self.get(app_id)
        async with self._lock:
            state = AppState.BACKGROUND
            if app.id in self._containers and app.sandbox_pid is not None:
                await self._link.call(
                    "sched.background", {"pid": app.sandbox_pid, "background": True}
                )
                if self.freeze_background:
                    await self._link.call("proc.suspend", {"pid": app.sandbox_pid})
                    state = AppState.SUSPENDED
            if self.focused == app.id:
                self.focused = None
            return self._set(app, state=state)

    def ended(self, pid: int) -> App | None:
        """The kernel says process ``pid`` ended: its app, if any, is destroyed and gone."""
        for app in self.running():
            if app.sandbox_pid == pid:
                self._apps.pop(app.id, None)
                self._containers.discard(app.id)
                if self.focused == app.id:
                    self.focused = None
                logger.info("app %s destroyed: its process %d ended", app.id, pid)
                return app.model_copy(update={"state": AppState.DESTROYED})
        return None

    async def watch(self) -> None:
        """Follow the kernel's events for ever: an app whose process ends is destroyed."""
        kinds = ["process.exited", "process.killed", "process.oom", "process.timeout"]
        while True:
            await self._link.wait_connected()
            try:
                async with self._link.stream("sys.events", {"kinds": kinds}) as events:
                    async for event in events:
                        if isinstance(event.get("pid"), int):
                            self.ended(event["pid"])
            except abi.SyscallError as exc:
                logger.warning("kernel events lost (%s); following them again", exc)
            await trio.sleep(0.5)

    def set_window(self, app_id: str, window: Window) -> App:
        """Keep where the desktop shows an app."""
        return self._set(self.get(app_id), window=window)

    def component_state(self, app_id: str) -> dict[str, JsonValue]:
        """An app's component state."""
        return self.get(app_id).component_state

    def set_component_state(self, app_id: str, state: dict[str, JsonValue]) -> App:
        """Replace an app's component state."""
        return self._set(self.get(app_id), component_state=state)

    def children(self, app_id: str) -> list[App]:
        """The apps ``app_id`` opened."""
        return [a for a in self.running() if a.parent_id == app_id]

    async def close(self, app_id: str) -> list[str]:
        """Close an app and its children (deepest first); the ids closed.

        Ending its kernel process ends its container and releases what it held.
        """
        app = self.get(app_id)
        closed: list[str] = []
        for child in self.children(app.id):
            closed += await self.close(child.id)
        if app.sandbox_pid is not None:
            with contextlib.suppress(abi.SyscallNotFoundError):  # it had ended already
                await self._link.call("proc.kill", {"pid": app.sandbox_pid})
        self._apps.pop(app.id, None)
        self._containers.discard(app.id)
        if self.focused == app.id:
            self.focused = None
        logger.info("app %s closed", app.id)
        return [*closed, app.id]


def _process_name(blueprint: Blueprint) -> str:
    """The kernel process's name: the app's id, starting with a letter or digit."""
    safe = blueprint.app.id.lstrip("-_")
    return safe[:64] or "app"
