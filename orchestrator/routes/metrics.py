"""``/metrics`` (Prometheus text) and ``/metrics/json``: the web tier's and the kernel's."""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint, Response

from kernel.client import abi
from orchestrator.kernel_link import KernelLink
from orchestrator.metrics import WebMetrics, families_as_json

__all__ = ["metrics_routes"]

_KERNEL_TIMEOUT = 2.0


def metrics_routes(link: KernelLink, metrics: WebMetrics) -> Blueprint:
    """The metrics routes: the web tier's own counters, then the kernel's."""
    routes = Blueprint("metrics", __name__, url_prefix="/metrics")

    async def exposition() -> str:
        kernel = ""
        with trio.move_on_after(_KERNEL_TIMEOUT):
            try:
                kernel = (await link.invoke(abi.events.SYS_METRICS)).text
            except abi.SyscallError:
                kernel = ""
        metrics.kernel_up.set(1 if kernel else 0)
        return metrics.render().decode() + kernel

    @routes.get("")
    async def prometheus() -> Response:
        """Every metric in the Prometheus text format; ``agentos_kernel_up`` 0: no kernel's."""
        return Response(await exposition(), content_type=metrics.content_type)

    @routes.get("/json")
    async def as_json() -> dict[str, Any]:
        """The same families as JSON: ``{name: {type, help, samples}}``."""
        return {"families": families_as_json(await exposition())}

    return routes
