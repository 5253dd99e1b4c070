"""The capability vocabulary: what a process may ask the kernel to do, and where.

Policies (this package) grant capabilities; the kernel checks the one each syscall
names before it acts. The first fourteen are the original system's types; the last two
cover the scheduler and memory controls our calls add.

A :class:`Grant` is a capability as held: the file capabilities can be scoped to a
subtree of the kernel's file namespace. Written as text, ``read_file`` holds anywhere
and ``read_file:/storage/apps/{app}`` only under that path, where ``{app}`` stands for
the holder's own app id until :meth:`Grant.for_app` fills it in.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = ["APP", "FILE_CAPABILITIES", "Capability", "Grant", "covered", "uncovered"]


class Capability(enum.StrEnum):
    """A kind of authority a process can hold. Values are the wire names."""

    READ_FILE = "read_file"
    WRITE_FILE = "write_file"
    CREATE_FILE = "create_file"
    DELETE_FILE = "delete_file"
    LIST_DIRECTORY = "list_directory"
    SPAWN_PROCESS = "spawn_process"
    KILL_PROCESS = "kill_process"
    NETWORK_ACCESS = "network_access"
    BIND_PORT = "bind_port"
    SYSTEM_INFO = "system_info"
    TIME_ACCESS = "time_access"
    SEND_MESSAGE = "send_message"
    RECEIVE_MESSAGE = "receive_message"
    NETWORK_NAMESPACE = "network_namespace"
    SCHEDULER_CONTROL = "scheduler_control"
    MEMORY_CONTROL = "memory_control"


FILE_CAPABILITIES = frozenset(
    {
        Capability.READ_FILE,
        Capability.WRITE_FILE,
        Capability.CREATE_FILE,
        Capability.DELETE_FILE,
        Capability.LIST_DIRECTORY,
    }
)
"""The capabilities that can be scoped by path."""

APP = "{app}"
"""In a scope, the holder's own app id (one whole path component)."""

_COMPONENT = re.compile(r"^[A-Za-z0-9._@+-]+$")
_MAX_SCOPE = 1024
_SYNTAX = "a capability name, or name:/absolute/path for a file capability"


@functools.total_ordering
@dataclass(frozen=True)
class Grant:
    """One capability as held: anywhere (``scope`` None) or under ``scope`` only."""

    capability: Capability
    scope: PurePosixPath | None = None

    def __post_init__(self) -> None:
        if self.scope is None:
            return
        if self.capability not in FILE_CAPABILITIES:
            msg = f"{self.capability} cannot be scoped by path: only file capabilities can"
            raise ValueError(msg)
        _check_scope(self.scope)

    @classmethod
    def parse(cls, text: str) -> Grant:
        """``name`` or ``name:/path``.

        Raises:
            ValueError: not a capability, or a scope that is not a clean absolute path.
        """
        name, sep, scope = text.partition(":")
        try:
            capability = Capability(name)
        except ValueError:
            msg = f"unknown capability {name!r} (expected {_SYNTAX})"
            raise ValueError(msg) from None
        if not sep:
            return cls(capability)
        return cls(capability, PurePosixPath(_check_components(_check_text(scope))))

    def __str__(self) -> str:
        return self.capability.value if self.scope is None else f"{self.capability}:{self.scope}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Grant):
            return NotImplemented
        return str(self) < str(other)

    def covers(self, other: Grant) -> bool:
        """Whether holding this grant includes holding ``other``."""
        if self.capability is not other.capability:
            return False
        if self.scope is None:
            return True
        return other.scope is not None and other.scope.is_relative_to(self.scope)

    def allows(self, capability: Capability, path: PurePosixPath) -> bool:
        """Whether this grant lets its holder use ``capability`` on the absolute ``path``.

        ``path`` must be normalised by the caller (no ``.``/``..`` components): a scope
        is a plain prefix test on components, so ``/tmpx`` is not under ``/tmp``.
        """
        if self.capability is not capability:
            return False
        return self.scope is None or path.is_relative_to(self.scope)

    def for_app(self, app_id: str | None) -> Grant | None:
        """The grant with ``{app}`` filled in; None if it needs an app and there is none."""
        if self.scope is None or APP not in self.scope.parts:
            return self
        if app_id is None:
            return None
        parts = [app_id if part == APP else part for part in self.scope.parts]
        return Grant(self.capability, PurePosixPath(*parts))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: object) -> Grant:
            if isinstance(value, Grant):
                return value
            if isinstance(value, str):
                return cls.parse(value)
            msg = f"expected {_SYNTAX}"
            raise ValueError(msg)

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        names = "|".join(c.value for c in Capability)
        return {
            "type": "string",
            "pattern": f"^({names})(:/.*)?$",
            "description": f"{_SYNTAX}; {APP} in a path is the holder's app id",
        }


def _check_text(scope: str) -> str:
    if not scope.startswith("/") or len(scope) > _MAX_SCOPE:
        msg = f"a scope is an absolute path of at most {_MAX_SCOPE} characters, not {scope[:80]!r}"
        raise ValueError(msg)
    if scope != "/" and (scope.endswith("/") or "//" in scope):
        msg = f"a scope has no empty components: {scope!r}"
        raise ValueError(msg)
    return scope


def _check_scope(scope: PurePosixPath) -> None:
    _check_components(_check_text(str(scope)))


def _check_components(scope: str) -> str:
    for part in scope.split("/")[1:] if scope != "/" else ():
        if part in (".", "..") or not (part == APP or _COMPONENT.match(part)):
            msg = f"a scope's components are plain names or {APP}, not {part!r}"
            raise ValueError(msg)
    return scope


def uncovered(wanted: Iterable[Grant], held: Iterable[Grant]) -> list[Grant]:
    """The grants of ``wanted`` that no grant of ``held`` covers, sorted."""
    held = list(held)
    return sorted(g for g in wanted if not any(h.covers(g) for h in held))


def covered(wanted: Iterable[Grant], held: Iterable[Grant]) -> bool:
    """Whether ``held`` includes everything ``wanted`` grants."""
    return not uncovered(wanted, held)
