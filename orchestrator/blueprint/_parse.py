"""Reading a Blueprint: size, JSON, the shorthand forms, the model, the bindings.

Every error names where it is, as a JSON path: ``ui.components[3].props.columns``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

import pydantic

from orchestrator.blueprint._model import COMPONENT_TYPES, Blueprint, Component
from orchestrator.blueprint._tools import DESKTOP_TOOLS
from sandbox.errors import InvalidArgumentError

__all__ = ["MAX_SPEC_BYTES", "BlueprintError", "parse_blueprint"]

MAX_SPEC_BYTES = 512 * 1024
"""The largest spec accepted, in bytes of JSON."""
MAX_DEPTH = 32

ROLES = frozenset({"sidebar", "main", "editor", "header", "footer", "content", "section"})
_LINES = {"row": "horizontal", "col": "vertical"}
_SHORTHAND = re.compile(r"^(?P<type>[a-z_]+)(?:#(?P<id>[A-Za-z0-9_.:-]{1,128}))?$")
_TOOL = re.compile(r"^[a-z][a-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$")
_EVENT = re.compile(r"^[a-z][a-z_]{0,31}$")
_KEY = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
_IF = re.compile(
    rf"^\s*!?\s*{_KEY}\s*(?:(?:==|!=|<=|>=|<|>)\s*"
    rf"(?:-?\d+(?:\.\d+)?|'[^']*'|\"[^\"]*\"|true|false|null|{_KEY})\s*)?$"
)
_FOR = re.compile(rf"^\s*[A-Za-z_]\w*\s*(?:,\s*[A-Za-z_]\w*\s*)?\s+in\s+{_KEY}\s*$")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "text": ("content",),
    "image": ("src",),
    "video": ("src",),
    "audio": ("src",),
    "app_shortcut": ("app_id", "name", "icon"),
}
_EXPLICIT_KEYS = {"type", "id", "props", "on_event", "children", "$if", "$for", "$template"}


class BlueprintError(InvalidArgumentError):
    """A spec that is not a valid Blueprint; ``details`` name each problem's JSON path."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        shown = "; ".join(f"{path or '<spec>'}: {msg}" for path, msg in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid Blueprint: {shown}{more}")
        self.details = [{"loc": path, "msg": msg} for path, msg in problems[:50]]


def _path(parts: Collection[object]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Expander:
    """The shorthand forms made explicit, problems collected with their paths."""

    def __init__(self, templates: Mapping[str, Any]) -> None:
        self.templates = templates
        self.problems: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self.ids: dict[str, str] = {}

    def fail(self, path: list[object], message: str) -> None:
        self.problems.append((_path(path), message))

    def new_id(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind}-{self.counts[kind]}"

    def components(self, items: object, path: list[object], depth: int) -> list[Any]:
        if not isinstance(items, list):
            self.fail(path, "must be a list of components")
            return []
        if depth > MAX_DEPTH:
            self.fail(path, f"components nest deeper than {MAX_DEPTH}")
            return []
        return [self.component(item, [*path, i], depth) for i, item in enumerate(items)]

    def component(self, item: object, path: list[object], depth: int) -> Any:
        if isinstance(item, str):  # a bare string is a text
            return self.finish({"type": "text", "props": {"content": item}}, path, depth)
        if not isinstance(item, dict):
            self.fail(path, "a component is an object or a string")
            return item
        if "type" in item or not (len(item) == 1 and _SHORTHAND.fullmatch(next(iter(item)))):
            unknown = set(item) - _EXPLICIT_KEYS
            if unknown:
                self.fail(path, f"unknown keys {sorted(unknown)} (a shorthand has one key)")
            return self.finish(dict(item), path, depth)
        (key, body), = item.items()  # fmt: skip
        match = _SHORTHAND.fullmatch(key)
        assert match is not None
        if not isinstance(body, dict):
            self.fail([*path, key], "a shorthand component's value is an object of props")
            return item
        explicit: dict[str, Any] = {"type": match["type"], "props": {}, "on_event": {}}
        if match["id"]:
            explicit["id"] = match["id"]
        for name, value in body.items():
            if name.startswith("@"):
                explicit["on_event"][name[1:]] = value
            elif name in ("children", "$if", "$for", "$template"):
                explicit[name] = value
            else:
                explicit["props"][name] = value
        return self.finish(explicit, [*path, key], depth)

    def finish(self, explicit: dict[str, Any], path: list[object], depth: int) -> dict[str, Any]:
        kind = explicit.get("type")
        if not isinstance(kind, str):
            self.fail([*path, "type"], "a component needs a type")
            return explicit
        props = explicit.get("props", {})
        if not isinstance(props, dict):
            self.fail([*path, "props"], "props must be an object")
            props = {}
        props = dict(props)
        if (template := explicit.pop("$template", None)) is not None:
            if not isinstance(template, str) or template not in self.templates:
                self.fail([*path, "$template"], f"no template {template!r}")
            else:
                props = {**self.templates[template], **props}
        kind = self.kind(kind, props, path)
        explicit["type"] = kind
        explicit["props"] = self.checked_props(kind, props, [*path, "props"])
        explicit.setdefault("id", self.new_id(kind))
        component_id = explicit["id"]
        if isinstance(component_id, str):
            if component_id in self.ids:
                self.fail([*path, "id"], f"id {component_id!r} is also at {self.ids[component_id]}")
            self.ids[component_id] = _path(path)
        explicit["on_event"] = self.bindings(explicit.get("on_event", {}), [*path, "on_event"])
        self.condition(explicit, path)
        if "children" in explicit:
            explicit["children"] = self.components(
                explicit["children"], [*path, "children"], depth + 1
            )
        return explicit

    def kind(self, kind: str, props: dict[str, Any], path: list[object]) -> str:
        """The component type ``kind`` stands for: rows, columns and roles are containers."""
        if kind in _LINES:
            props.setdefault("layout", _LINES[kind])
            return "container"
        if kind in ROLES:
            props.setdefault("role", kind)
            props.setdefault("layout", "vertical")
            return "container"
        if kind not in COMPONENT_TYPES:
            known = ", ".join(sorted(COMPONENT_TYPES | ROLES | set(_LINES)))
            self.fail([*path, "type"], f"unknown component type {kind!r} (known: {known})")
        return kind

    def checked_props(self, kind: str, props: dict[str, Any], path: list[object]) -> dict[str, Any]:
        """The props the renderer relies on, checked (and ``grid.columns`` made a number)."""
        if "style" in props and not isinstance(props["style"], dict):
            self.fail([*path, "style"], "style is an object of CSS properties")
        for name in _REQUIRED.get(kind, ()):
            if not isinstance(props.get(name), str | int | float) or isinstance(
                props.get(name), bool
            ):
                self.fail([*path, name], f"a {kind} needs {name!r} (text)")
        if kind == "grid" and "columns" in props:
            columns = props["columns"]
            if isinstance(columns, str) and columns.isdigit():
                columns = int(columns)
            if isinstance(columns, bool) or not isinstance(columns, int) or not 1 <= columns <= 12:
                self.fail([*path, "columns"], f"columns is a number from 1 to 12, not {columns!r}")
            else:
                props["columns"] = columns
        return props

    def bindings(self, events: object, path: list[object]) -> object:
        if not isinstance(events, dict):
            self.fail(path, "on_event maps event names to a tool or a list of tools")
            return events
        result = {}
        for event, bound in events.items():
            if not _EVENT.fullmatch(event):
                self.fail([*path, event], f"{event!r} is not an event name (click, change, ...)")
            result[event] = [bound] if isinstance(bound, str) else bound
        return result

    def condition(self, explicit: dict[str, Any], path: list[object]) -> None:
        for key, pattern, form in (
            ("$if", _IF, "a state key, '!key', or 'key <op> value'"),
            ("$for", _FOR, "'item in key' or 'item, index in key'"),
        ):
            value = explicit.get(key)
            if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
                self.fail([*path, key], f"{value!r} is not {form}")


def _services(raw: object, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The services, from any of their forms.

    ``"storage"``, ``{"storage": [...]}``, ``{"storage": "*"}``, ``{"fs": {tools, ...}}``,
    or the canonical ``{"name", "tools", "options"}``.
    """
    if not isinstance(raw, list):
        problems.append(("services", "must be a list"))
        return []
    refs: list[dict[str, Any]] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, str):
            refs.append({"name": entry})
        elif isinstance(entry, dict) and "name" in entry:  # the canonical form itself
            refs.append(entry)
        elif isinstance(entry, dict) and len(entry) == 1:
            ((name, spec),) = entry.items()
            if isinstance(spec, list | str):
                refs.append({"name": name, "tools": spec})
            elif isinstance(spec, dict):
                options = {k: v for k, v in spec.items() if k != "tools"}
                refs.append({"name": name, "tools": spec.get("tools", "*"), "options": options})
            else:
                problems.append((f"services[{i}].{name}", "a list of tools, '*', or an object"))
        else:
            problems.append((f"services[{i}]", "a service name, or one {name: tools} pair"))
    return refs


def _load(data: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(data, Mapping):
        encoded = json.dumps(data).encode()
        document: object = dict(data)
    else:
        encoded = data.encode() if isinstance(data, str) else data
        if len(encoded) > MAX_SPEC_BYTES:
            raise BlueprintError([("", f"{len(encoded)} bytes; at most {MAX_SPEC_BYTES}")])
        try:
            document = json.loads(encoded)
        except json.JSONDecodeError as exc:
            where = f"not JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            raise BlueprintError([("", where)]) from None
    if len(encoded) > MAX_SPEC_BYTES:
        raise BlueprintError([("", f"{len(encoded)} bytes; at most {MAX_SPEC_BYTES}")])
    if not isinstance(document, dict):
        raise BlueprintError([("", "a Blueprint is a JSON object")])
    return document


def parse_blueprint(
    data: bytes | str | Mapping[str, Any], *, server_tools: Collection[str] = ()
) -> Blueprint:
    """A Blueprint in the canonical form, from a spec in any of the accepted forms.

    Args:
        data: the spec: JSON text, or parsed JSON.
        server_tools: the service tools the server offers (the desktop's own are known).

    Raises:
        BlueprintError: over 512 KB, not JSON, or not a valid Blueprint; its details name
            every problem's JSON path.
    """
    document = _load(data)
    problems: list[tuple[str, str]] = []
    ui = document.get("ui")
    if not isinstance(ui, dict):
        raise BlueprintError([("ui", "a Blueprint needs a ui object")])
    templates = {**_dict(document.get("templates")), **_dict(ui.get("templates"))}
    expander = _Expander(templates)
    canonical: dict[str, Any] = {
        k: v for k, v in document.items() if k not in ("ui", "services", "templates")
    }
    canonical["services"] = _services(document.get("services", []), problems)
    canonical["templates"] = templates
    canonical_ui = {k: v for k, v in ui.items() if k not in ("components", "templates")}
    lifecycle = ui.get("lifecycle", {})
    if isinstance(lifecycle, dict):
        canonical_ui["lifecycle"] = {
            hook: [tools] if isinstance(tools, str) else tools for hook, tools in lifecycle.items()
        }
    canonical_ui["components"] = expander.components(
        ui.get("components", []), ["ui", "components"], 0
    )
    canonical["ui"] = canonical_ui
    problems += expander.problems
    if problems:
        raise BlueprintError(problems)
    try:
        blueprint = Blueprint.model_validate(canonical)
    except pydantic.ValidationError as exc:
        raise BlueprintError(
            [(_path(error["loc"]), error["msg"]) for error in exc.errors(include_url=False)]
        ) from None
    known = set(DESKTOP_TOOLS) | set(server_tools)
    unknown = [(path, tool) for path, tool in _bindings(blueprint) if tool not in known]
    if unknown:
        raise BlueprintError([(path, f"unknown tool {tool!r}") for path, tool in unknown])
    return blueprint


def _dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _bindings(blueprint: Blueprint) -> list[tuple[str, str]]:
    """Every (JSON path, tool) the spec binds, hooks first."""
    found = [
        (f"ui.lifecycle.{hook}[{i}]", tool)
        for hook, tools in blueprint.ui.lifecycle.model_dump().items()
        for i, tool in enumerate(tools)
    ]

    def walk(components: list[Component], path: str) -> None:
        for i, component in enumerate(components):
            here = f"{path}[{i}]"
            for event, tools in component.on_event.items():
                found.extend(
                    (f"{here}.on_event.{event}[{j}]", tool) for j, tool in enumerate(tools)
                )
            walk(component.children, f"{here}.children")

    walk(blueprint.ui.components, "ui.components")
    return found
