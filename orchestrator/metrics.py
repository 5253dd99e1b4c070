"""The web tier's own metrics (requests by route and status, latency), beside the kernel's.

``GET /metrics`` serves both in the Prometheus text format; ``GET /metrics/json`` the
same families as JSON. Route labels are the URL rules (``/admin/policies/<name>``), a
bounded set, never the raw paths.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart, Response, g, request

__all__ = ["WebMetrics", "families_as_json"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WebMetrics:
    """Counters the app's request hooks update."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "agentos_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "agentos_http_request_seconds",
            "HTTP request latency, from routing to the response, by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.kernel_up = Gauge(
            "agentos_kernel_up",
            "1 if the web tier's kernel connection answered the last scrape, else 0.",
            registry=self.registry,
        )

    def install(self, app: Quart) -> None:
        """Count every request ``app`` answers."""

        @app.before_request
        async def started() -> None:
            g.metrics_started = time.perf_counter()

        @app.after_request
        async def finished(response: Response) -> Response:
            started = g.get("metrics_started")
            rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
            self._requests.labels(request.method, rule, str(response.status_code)).inc()
            if started is not None:
                self._seconds.labels(rule).observe(time.perf_counter() - started)
            return response

    def render(self) -> bytes:
        """The web tier's metrics, in the Prometheus text exposition format."""
        return generate_latest(self.registry)


def families_as_json(text: str) -> dict[str, Any]:
    """Prometheus text as ``{name: {type, help, samples: [{name, labels, value}]}}``."""
    families: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [
                {"name": s.name, "labels": dict(s.labels), "value": s.value} for s in family.samples
            ],
        }
    return families
