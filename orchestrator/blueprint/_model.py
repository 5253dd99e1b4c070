"""The canonical Blueprint: what every accepted spec becomes, whatever form it came in.

Components are all explicit (``type``, ``id``, ``props``, ``on_event``, ``children``);
``row``/``col`` and role containers are containers; templates are applied; hooks and
event bindings are lists of tool names; ``$if``/``$for`` stay, checked, for the renderer.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

__all__ = [
    "APP_ID_PATTERN",
    "COMPONENT_TYPES",
    "AppInfo",
    "Blueprint",
    "Component",
    "Layout",
    "Lifecycle",
    "ProcessSection",
    "ServiceRef",
    "UISpec",
]

APP_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
COMPONENT_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
TOOL_PATTERN = r"^[a-z][a-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$"
EVENT_PATTERN = r"^[a-z][a-z_]{0,31}$"

COMPONENT_TYPES = frozenset(
    {
        "button", "input", "text", "checkbox", "radio", "slider",
        "container", "grid", "list",
        "select", "textarea",
        "image", "video", "audio", "canvas",
        "badge", "card", "divider", "modal", "tabs",
        "app_shortcut", "iframe", "progress",
    }
)  # fmt: skip
"""The 23 component types the desktop renders."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Layout(enum.StrEnum):
    """How a window lays its top components out."""

    VERTICAL = "vertical"
    HORIZONTAL = "horizontal"


class AppInfo(BaseModel):
    """``app``: who the app is. Unknown keys are kept (the original's files have some)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=APP_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    icon: str = Field(default="", max_length=64)
    category: str = Field(default="", max_length=64)
    version: str = Field(default="", max_length=64)
    author: str = Field(default="", max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=64)
    permissions: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="a policy level (MINIMAL, STANDARD, NETWORK) and/or capability names",
    )

    @field_validator("permissions")
    @classmethod
    def _upper_words(cls, permissions: list[str]) -> list[str]:
        for permission in permissions:
            if not re.fullmatch(r"[A-Z][A-Z_]{0,63}", permission):
                msg = f"{permission!r} is not a permission (upper-case words: STANDARD, READ_FILE)"
                raise ValueError(msg)
        return permissions


class ServiceRef(_Model):
    """A service the app uses, and which of its tools (``*``: all)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    tools: list[str] | Literal["*"] = "*"
    options: dict[str, JsonValue] = Field(default_factory=dict)


class Lifecycle(_Model):
    """Tools run when the window mounts, unmounts and gains focus."""

    on_mount: list[str] = Field(default_factory=list)
    on_unmount: list[str] = Field(default_factory=list)
    on_focus: list[str] = Field(default_factory=list)


class Component(BaseModel):
    """One component, explicit."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: str
    id: str = Field(pattern=COMPONENT_ID_PATTERN)
    props: dict[str, JsonValue] = Field(default_factory=dict)
    on_event: dict[str, list[str]] = Field(default_factory=dict)
    children: list[Component] = Field(default_factory=list)
    if_: str | None = Field(default=None, alias="$if", description="shown only when true")
    for_: str | None = Field(
        default=None, alias="$for", description="repeated: 'item in key' or 'item, i in key'"
    )


class UISpec(_Model):
    """``ui``: the window's title, layout, hooks and components."""

    title: str = Field(default="", max_length=200)
    layout: Layout = Layout.VERTICAL
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    components: list[Component] = Field(default_factory=list)


class ProcessSection(_Model):
    """``process``: a server-side process, run in the app's sandbox."""

    command: list[str] = Field(min_length=1, max_length=256)
    env: dict[str, str] = Field(default_factory=dict, max_length=128)
    workdir: str | None = Field(default=None, max_length=4096)

    @field_validator("command")
    @classmethod
    def _argv(cls, command: list[str]) -> list[str]:
        if not command[0] or any("\0" in arg for arg in command):
            msg = "the program must be named, and no argument may hold a NUL byte"
            raise ValueError(msg)
        return command

    @field_validator("env")
    @classmethod
    def _names(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not _ENV_NAME.fullmatch(name) or "\0" in value:
                msg = f"{name!r}: environment names are letters, digits and _; no NUL in values"
                raise ValueError(msg)
        return env

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, workdir: str | None) -> str | None:
        if workdir is not None and (not workdir.startswith("/") or "/../" in f"{workdir}/"):
            msg = "workdir is an absolute path inside the sandbox, without '..'"
            raise ValueError(msg)
        return workdir


class Blueprint(_Model):
    """A whole, validated app spec in the canonical form."""

    app: AppInfo
    services: list[ServiceRef] = Field(default_factory=list)
    ui: UISpec
    templates: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    config: dict[str, JsonValue] = Field(default_factory=dict)
    process: ProcessSection | None = None

    def to_json(self) -> dict[str, Any]:
        """The canonical form as JSON data (``$if``/``$for`` under their own names)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def tools(self) -> set[str]:
        """Every tool the spec binds."""
        found = {t for hook in self.ui.lifecycle.model_dump().values() for t in hook}

        def walk(components: list[Component]) -> None:
            for component in components:
                for bound in component.on_event.values():
                    found.update(bound)
                walk(component.children)

        walk(self.ui.components)
        return found

    def policy_name(self) -> str | None:
        """The built-in policy the app asks for (``STANDARD`` -> ``standard``), if any.

        Admission (never wider than the administrator allows) is the app manager's.
        """
        for permission in self.app.permissions:
            if permission in {"MINIMAL", "STANDARD", "NETWORK"}:
                return permission.lower()
        return None

    def capabilities(self) -> list[str]:
        """The capability names the app lists (``READ_FILE`` -> ``read_file``)."""
        levels = {"MINIMAL", "STANDARD", "NETWORK", "PRIVILEGED"}
        return [p.lower() for p in self.app.permissions if p not in levels]
