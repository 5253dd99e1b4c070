"""The kernel's Prometheus metrics: syscalls, denials, latency, lost events, and live counts.

Each :class:`KernelMetrics` has a registry of its own (never prometheus_client's global
one), so several kernels in one process, as in the tests, count apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

__all__ = ["LATENCY_BUCKETS", "KernelMetrics", "StateCounts"]

logger = logging.getLogger("agentos.kernel.metrics")

StateCounts = Callable[[], Mapping[str, int]]
"""Reads how many objects are in each state, when the metrics are scraped."""

LATENCY_BUCKETS = (
    0.00001, 0.000025, 0.00005,
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
    10.0,
)  # fmt: skip
"""Upper bounds of ``agentos_syscall_seconds``, 10 µs .. 10 s (streaming calls go past)."""


def _no_counts() -> Mapping[str, int]:
    return {}


class _StateGauges:
    """A custom collector: gauges whose values are read through callbacks at scrape time."""

    def __init__(self, gauges: Iterable[tuple[str, str, StateCounts]]) -> None:
        self._gauges = tuple(gauges)

    def describe(self) -> list[Metric]:
        # Names only, so that registering does not call the callbacks.
        return [GaugeMetricFamily(name, doc, labels=["state"]) for name, doc, _ in self._gauges]

    def collect(self) -> list[Metric]:
        families: list[Metric] = []
        for name, doc, read in self._gauges:
            try:
                counts = dict(read())
            except Exception:
                # One broken source must not hide the other metrics.
                logger.exception("cannot read %s", name)
                continue
            family = GaugeMetricFamily(name, doc, labels=["state"])
            for state, count in sorted(counts.items()):
                family.add_metric([state], count)
            families.append(family)
        return families


class KernelMetrics:
    """Counters the call table updates, and live counts read when scraped.

    Args:
        processes: live processes by state, e.g. ``{"running": 3}``.
        containers: containers by state.
    """

    content_type = CONTENT_TYPE_LATEST
    """The HTTP Content-Type of :meth:`render`'s output."""

    def __init__(
        self, *, processes: StateCounts = _no_counts, containers: StateCounts = _no_counts
    ) -> None:
        self.registry = CollectorRegistry()
        self._calls = Counter(
            "agentos_syscalls",
            "Syscalls handled, by call and outcome (ok, cancelled, or the POSIX error code).",
            ["call", "outcome"],
            registry=self.registry,
        )
        self._denials = Counter(
            "agentos_syscall_denials",
            "Syscalls refused for a missing capability, or by the call itself (ownership).",
            ["call", "capability"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "agentos_syscall_seconds",
            "Syscall latency, from dispatch to result; for streaming calls the whole stream.",
            ["call"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._events_dropped = Counter(
            "agentos_events_dropped",
            "Events subscribers lost because their buffer was full.",
            registry=self.registry,
        )
        self.registry.register(
            _StateGauges(
                [
                    ("agentos_processes", "Processes in the process table, by state.", processes),
                    ("agentos_containers", "Containers, by state.", containers),
                ]
            )
        )

    def observe_call(self, call: str, outcome: str, seconds: float) -> None:
        """Count one finished call and its latency.

        ``call`` must come from a bounded set (catalog names, or "unknown"): every value
        makes a time series.
        """
        self._calls.labels(call=call, outcome=outcome).inc()
        self._seconds.labels(call=call).observe(seconds)

    def count_denial(self, call: str, capability: str) -> None:
        """Count one call refused for lack of ``capability`` (or "ownership")."""
        self._denials.labels(call=call, capability=capability).inc()

    def count_dropped_events(self, count: int = 1) -> None:
        """Count events a subscriber lost."""
        self._events_dropped.inc(count)

    def render(self) -> bytes:
        """Every metric, in the Prometheus text exposition format."""
        return generate_latest(self.registry)
