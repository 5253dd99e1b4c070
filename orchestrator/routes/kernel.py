"""``/kernel/*``: what the kernel says about itself, and its scheduler, for the desktop."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

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

    @routes.post("/schedule-next")
    @validate_response(abi.sched.SchedNextResult)
    async def schedule_next() -> abi.sched.SchedNextResult:
        """Pass the kernel's turn to the next process in the policy's order (``sched.next``)."""
        return await link.invoke(abi.sched.SCHED_NEXT)

    @routes.get("/scheduler/stats")
    @validate_response(abi.sched.SchedStatsResult)
    async def scheduler_stats() -> abi.sched.SchedStatsResult:
        """Each container's weight, cap and CPU use (``sched.stats``)."""
        return await link.invoke(abi.sched.SCHED_STATS)

    @routes.put("/scheduler/policy")
    @validate_request(abi.sched.SchedPolicyArgs)
    @validate_response(abi.sched.SchedPolicyResult)
    async def scheduler_policy(data: abi.sched.SchedPolicyArgs) -> abi.sched.SchedPolicyResult:
        """Set the policy, ``fair``, ``priority`` or ``round_robin``; containers re-weighed."""
        return await link.invoke(abi.sched.SCHED_SET_POLICY, data)

    return routes
