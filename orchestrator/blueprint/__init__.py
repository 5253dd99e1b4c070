"""Blueprints: the JSON app specs the desktop renders and the server launches.

:func:`parse_blueprint` accepts the original format in all its forms (explicit and
shorthand components, ``row``/``col`` and role containers, templates, lifecycle hooks,
``$if``/``$for``) plus our ``process`` section, and returns the canonical
:class:`Blueprint`, or raises :class:`BlueprintError` naming each problem's JSON path.
"""

from orchestrator.blueprint._model import APP_ID_PATTERN as APP_ID_PATTERN
from orchestrator.blueprint._model import COMPONENT_TYPES as COMPONENT_TYPES
from orchestrator.blueprint._model import AppInfo as AppInfo
from orchestrator.blueprint._model import Blueprint as Blueprint
from orchestrator.blueprint._model import Component as Component
from orchestrator.blueprint._model import Layout as Layout
from orchestrator.blueprint._model import Lifecycle as Lifecycle
from orchestrator.blueprint._model import ProcessSection as ProcessSection
from orchestrator.blueprint._model import ServiceRef as ServiceRef
from orchestrator.blueprint._model import UISpec as UISpec
from orchestrator.blueprint._parse import MAX_SPEC_BYTES as MAX_SPEC_BYTES
from orchestrator.blueprint._parse import ROLES as ROLES
from orchestrator.blueprint._parse import BlueprintError as BlueprintError
from orchestrator.blueprint._parse import parse_blueprint as parse_blueprint
from orchestrator.blueprint._tools import DESKTOP_TOOLS as DESKTOP_TOOLS

__all__ = [
    "APP_ID_PATTERN",
    "COMPONENT_TYPES",
    "DESKTOP_TOOLS",
    "MAX_SPEC_BYTES",
    "ROLES",
    "AppInfo",
    "Blueprint",
    "BlueprintError",
    "Component",
    "Layout",
    "Lifecycle",
    "ProcessSection",
    "ServiceRef",
    "UISpec",
    "parse_blueprint",
]
