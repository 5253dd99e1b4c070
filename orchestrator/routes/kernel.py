"""``/kernel/*``: what the kernel says about itself, for the desktop and scripts."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from kernel.client import abi
from orchestrator.kernel_link import KernelLink

__all__ = ["kernel_routes"]


def kernel_routes(link: KernelLink) -> Blueprint:
    """The kernel routes, bound to this server's kernel link."""
    routes = Blueprint("kernel", __name__, url_prefix="/kernel")

    @routes.get("/info")
    @validate_response(abi.system.SysInfoResult)
    async def info() -> abi.system.SysInfoResult:
        """The kernel's ``sys.info``."""
        return await link.invoke(abi.system.SYS_INFO)

    @routes.get("/calls")
    @validate_querystring(abi.system.SysCallsArgs)
    @validate_response(abi.system.SysCallsResult)
    async def calls(query_args: abi.system.SysCallsArgs) -> abi.system.SysCallsResult:
        """The syscall catalog (``sys.calls``), optionally one category."""
        return await link.invoke(abi.system.SYS_CALLS, query_args)

    return routes
