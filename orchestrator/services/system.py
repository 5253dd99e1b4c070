"""``system.*``: the kernel's information and time as the app sees them, and app logs."""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Literal

from pydantic import Field

from orchestrator.services._registry import Params, Service, ServiceContext, Tool

__all__ = ["AppLogs", "system_service"]

LOG_ENTRIES_PER_APP = 1000
LOG_APPS = 1024

Level = Literal["debug", "info", "warning", "error"]
_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
    "error": logging.ERROR,
}  # fmt: skip


class AppLogs:
    """The latest log entries of each app, bounded per app and in number of apps."""

    def __init__(self, *, per_app: int = LOG_ENTRIES_PER_APP, apps: int = LOG_APPS) -> None:
        self._per_app = per_app
        self._apps = apps
        self._logs: collections.OrderedDict[str, collections.deque[dict[str, Any]]] = (
            collections.OrderedDict()
        )

    def add(self, app: str, level: str, message: str) -> dict[str, Any]:
        """Keep one entry (the app least recently logging is forgotten past the bound)."""
        entry = {"at": time.time(), "level": level, "message": message}
        log = self._logs.pop(app, None) or collections.deque(maxlen=self._per_app)
        log.append(entry)
        self._logs[app] = log
        while len(self._logs) > self._apps:
            self._logs.popitem(last=False)
        logging.getLogger(f"agentos.apps.{app}").log(_LEVELS[level], "%s", message)
        return entry

    def latest(self, app: str, limit: int, level: str | None = None) -> list[dict[str, Any]]:
        """The last ``limit`` entries of ``app`` (at ``level`` or above), oldest first."""
        floor = _LEVELS[level] if level else 0
        entries = [e for e in self._logs.get(app, ()) if _LEVELS[e["level"]] >= floor]
        return entries[-limit:]


class _None(Params):
    pass


class _Log(Params):
    level: Level = Field(default="info", description="debug, info, warning or error")
    message: str = Field(min_length=1, max_length=4096, description="what happened")


class _GetLogs(Params):
    limit: int = Field(default=100, ge=1, le=LOG_ENTRIES_PER_APP, description="how many")
    level: Level | None = Field(default=None, description="this level and above only")


def _app_key(ctx: ServiceContext) -> str:
    return ctx.app_id or "desktop"


def system_service(logs: AppLogs) -> Service:
    """The ``system`` service, keeping app logs in ``logs``."""

    async def info(ctx: ServiceContext, _params: _None) -> Any:
        return await ctx.call("sys.info")

    async def now(ctx: ServiceContext, _params: _None) -> Any:
        return await ctx.call("time.now")

    async def ping(ctx: ServiceContext, _params: _None) -> Any:
        await ctx.call("sys.ping")
        return {"pong": True, "at": time.time()}

    async def log(ctx: ServiceContext, params: _Log) -> Any:
        return logs.add(_app_key(ctx), params.level, params.message)

    async def get_logs(ctx: ServiceContext, params: _GetLogs) -> Any:
        return {"entries": logs.latest(_app_key(ctx), params.limit, params.level)}

    return Service(
        id="system", name="System", category="system",
        description="Kernel information and time as the app sees them; the app's own log.",
        capabilities=("system_info", "time_access"),
        tools=(
            Tool("system.info", "The kernel's version, uptime and host.", _None, "sys.info", info),
            Tool("system.time", "The time now (Unix seconds and ISO 8601).", _None, "time", now),
            Tool("system.ping", "Check the kernel answers for the app.", _None, "{pong, at}", ping),
            Tool("system.log", "Add an entry to the app's log.", _Log, "the entry", log),
            Tool("system.getLogs", "The app's latest log entries.", _GetLogs, "{entries}",
                 get_logs),
        ),
    )  # fmt: skip
