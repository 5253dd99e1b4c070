"""Services and their typed tools: the catalog ``/services`` lists and ``/services/execute`` runs.

A tool is an id (``storage.get``), a pydantic model of its parameters (its schema is the
catalog's), and a coroutine run with a :class:`ServiceContext`: whom the call is for. A
tool that touches the kernel acts as the app's own kernel process, never as a privileged
one; without an app it acts as the desktop's own process, which holds little.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.kernel_link import KernelLink
from sandbox.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    describe_invalid,
)

__all__ = [
    "InvalidParamsError",
    "Params",
    "Service",
    "ServiceContext",
    "ServiceInfo",
    "ServiceRegistry",
    "Tool",
    "ToolInfo",
    "ToolParameter",
]

_TOOL_ID = re.compile(r"^[a-z][a-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$")
_WORD = re.compile(r"[a-z0-9]+")


class InvalidParamsError(InvalidArgumentError):
    """A tool's parameters do not fit its model; ``details`` name each bad one."""

    def __init__(self, message: str, details: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.details = details


class Params(BaseModel):
    """Base of a tool's parameters: unknown ones are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ServiceContext:
    """Whom a tool runs for.

    Attributes:
        link: the kernel.
        app_id: the app, or None for the desktop itself.
        pid: the kernel process every kernel call is made as.
    """

    link: KernelLink
    app_id: str | None
    pid: int

    def require_app(self, tool: str) -> str:
        """The app id; a tool that keeps an app's data cannot run without one.

        Raises:
            FailedPreconditionError: no app.
        """
        if self.app_id is None:
            msg = f"{tool} keeps an app's data: give the app_id of a running app"
            raise FailedPreconditionError(msg)
        return self.app_id

    async def call(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """A kernel call as this context's process."""
        return await self.link.call(name, args, as_pid=self.pid)


Run = Callable[[ServiceContext, Any], Awaitable[Any]]


class ToolParameter(BaseModel):
    """One parameter, as the original catalog described it."""

    name: str
    type: str
    description: str
    required: bool


class ToolInfo(BaseModel):
    """A tool in the catalog."""

    id: str
    name: str
    description: str
    parameters: list[ToolParameter]
    returns: str
    params_schema: dict[str, Any] = Field(description="JSON Schema of its parameters")


class ServiceInfo(BaseModel):
    """A service in the catalog."""

    id: str
    name: str
    description: str
    category: str
    capabilities: list[str] = Field(description="what its tools need of the app's process")
    tools: list[ToolInfo]


def _type_name(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    options = schema.get("anyOf", [])
    return " | ".join(str(o.get("type", "object")) for o in options) or "object"


@dataclass(frozen=True)
class Tool:
    """One tool: its id, parameters model, what it returns, and what runs it."""

    id: str
    description: str
    params: type[Params]
    returns: str
    run: Run

    def __post_init__(self) -> None:
        if not _TOOL_ID.fullmatch(self.id):
            msg = f"not a tool id: {self.id!r}"
            raise ValueError(msg)

    def info(self) -> ToolInfo:
        """The tool as the catalog shows it."""
        schema = self.params.model_json_schema()
        required = set(schema.get("required", []))
        parameters = [
            ToolParameter(
                name=name,
                type=_type_name(prop),
                description=prop.get("description", ""),
                required=name in required,
            )
            for name, prop in schema.get("properties", {}).items()
        ]
        return ToolInfo(
            id=self.id, name=self.id.split(".", 1)[1], description=self.description,
            parameters=parameters, returns=self.returns, params_schema=schema,
        )  # fmt: skip


@dataclass(frozen=True)
class Service:
    """A group of tools under one prefix (``storage`` for ``storage.get``)."""

    id: str
    name: str
    description: str
    category: str
    capabilities: tuple[str, ...]
    tools: tuple[Tool, ...]

    def __post_init__(self) -> None:
        for tool in self.tools:
            if not tool.id.startswith(f"{self.id}."):
                msg = f"tool {tool.id} is not in service {self.id}"
                raise ValueError(msg)

    def info(self) -> ServiceInfo:
        """The service as the catalog shows it."""
        return ServiceInfo(
            id=self.id, name=self.name, description=self.description, category=self.category,
            capabilities=list(self.capabilities), tools=[t.info() for t in self.tools],
        )  # fmt: skip


@dataclass
class ServiceRegistry:
    """The services this orchestrator offers, by id; their tools, by id."""

    _services: dict[str, Service] = field(default_factory=dict)
    _tools: dict[str, Tool] = field(default_factory=dict)

    @classmethod
    def of(cls, services: Iterable[Service]) -> ServiceRegistry:
        """A registry holding ``services``."""
        registry = cls()
        for service in services:
            registry.register(service)
        return registry

    def register(self, service: Service) -> None:
        """Add a service.

        Raises:
            AlreadyExistsError: its id or one of its tools' is taken.
        """
        if service.id in self._services:
            msg = f"service {service.id} is registered already"
            raise AlreadyExistsError(msg)
        for tool in service.tools:
            if tool.id in self._tools:
                msg = f"tool {tool.id} is registered already"
                raise AlreadyExistsError(msg)
        self._services[service.id] = service
        self._tools.update((tool.id, tool) for tool in service.tools)

    def services(self, category: str | None = None) -> list[Service]:
        """Every service (of ``category``), by id."""
        return [
            s
            for _, s in sorted(self._services.items())
            if category is None or s.category == category
        ]

    def tool_ids(self) -> list[str]:
        """Every tool id, sorted."""
        return sorted(self._tools)

    def tool(self, tool_id: str) -> Tool:
        """The tool ``tool_id``.

        Raises:
            NotFoundError: there is none.
        """
        try:
            return self._tools[tool_id]
        except KeyError:
            msg = f"no tool {tool_id!r}"
            raise NotFoundError(msg) from None

    def discover(self, message: str, limit: int = 5) -> list[Service]:
        """The services whose words best match ``message`` (the original's top 5)."""
        wanted = set(_WORD.findall(message.lower()))
        scored = []
        for service in self._services.values():
            text = " ".join(
                [service.id, service.name, service.description, service.category]
                + [f"{t.id} {t.description}" for t in service.tools]
            ).lower()
            score = len(wanted & set(_WORD.findall(text)))
            if score:
                scored.append((-score, service.id, service))
        return [service for *_, service in sorted(scored)[:limit]]

    async def execute(self, tool_id: str, params: dict[str, Any], ctx: ServiceContext) -> Any:
        """Validate ``params`` against the tool's model, then run it.

        Raises:
            NotFoundError: no such tool.
            InvalidArgumentError: the parameters do not fit its model (details name them).
            AgentOSError: whatever the tool raises (kernel errors included).
        """
        tool = self.tool(tool_id)
        try:
            parsed = tool.params.model_validate(params)
        except pydantic.ValidationError as exc:
            summary, details = describe_invalid(exc, prefix="params", whole="params")
            msg = f"invalid parameters of {tool_id}: {summary}"
            raise InvalidParamsError(msg, details) from None
        return await tool.run(ctx, parsed)
