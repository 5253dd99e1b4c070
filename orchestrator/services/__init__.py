"""Services: typed tools the desktop and apps call through ``/services/execute``.

Each call acts as the app's own kernel process (its grants, its files, its quota), or
as the desktop's own unprivileged process when no app is named.
"""

from orchestrator.services._contexts import DESKTOP_CAPABILITIES as DESKTOP_CAPABILITIES
from orchestrator.services._contexts import ServiceContexts as ServiceContexts
from orchestrator.services._registry import InvalidParamsError as InvalidParamsError
from orchestrator.services._registry import Params as Params
from orchestrator.services._registry import Service as Service
from orchestrator.services._registry import ServiceContext as ServiceContext
from orchestrator.services._registry import ServiceInfo as ServiceInfo
from orchestrator.services._registry import ServiceRegistry as ServiceRegistry
from orchestrator.services._registry import Tool as Tool
from orchestrator.services._registry import ToolInfo as ToolInfo
from orchestrator.services._registry import ToolParameter as ToolParameter

__all__ = [
    "DESKTOP_CAPABILITIES",
    "InvalidParamsError",
    "Params",
    "Service",
    "ServiceContext",
    "ServiceContexts",
    "ServiceInfo",
    "ServiceRegistry",
    "Tool",
    "ToolInfo",
    "ToolParameter",
]
