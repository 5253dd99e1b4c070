"""The kernel's state and its complete call table, independent of any socket."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kernel.abi import CATALOG, CallSpec, Catalog, WireModel
from kernel.calls import CallContext, CallTable
from kernel.calls.environ import EnvironCalls
from kernel.calls.files import FileCalls
from kernel.calls.ipc import PipeCalls, QueueCalls, ShmCalls
from kernel.calls.memory import MemoryCalls
from kernel.calls.net import NetCalls
from kernel.calls.policy import PolicyCalls
from kernel.calls.process import ProcessCalls
from kernel.calls.sched import SchedCalls
from kernel.calls.system import SystemCalls
from kernel.events import EventBus
from kernel.ipc import PipeTable, QueueTable, ShmTable
from kernel.memory import MemoryBudget
from kernel.metrics import KernelMetrics
from kernel.net import HttpClient, SocketTable
from kernel.policies import PolicyStore
from kernel.proc import ProcessTable
from kernel.sched import Scheduler
from kernel.supervisor import Supervisor
from kernel.vfs import MemFS, MountTable, VPath
from sandbox import installed_version

__all__ = ["MEMORY_MOUNT_BYTES", "Kernel"]

MEMORY_MOUNT_BYTES = 64 << 20
"""Capacity of the kernel's memory mounts, /tmp and /cache."""

ExtraCall = tuple[CallSpec[Any, Any], Callable[[CallContext, Any], Awaitable[WireModel]]]


class Kernel:
    """Subsystems plus the table that routes every syscall to them.

    Args:
        extra_calls: further (spec, handler) pairs, for embedding or tests; they join
            the standard catalog.
        memory_budget: bytes the containers' memory limits may add up to (by default
            80% of the host's memory).

    Raises:
        RuntimeError: a call in the catalog has no handler.
    """

    def __init__(
        self, *, extra_calls: Iterable[ExtraCall] = (), memory_budget: int | None = None
    ) -> None:
        extra = list(extra_calls)
        catalog = Catalog.of(CATALOG, (spec for spec, _ in extra))
        self.processes = ProcessTable()
        self.metrics = KernelMetrics(
            processes=lambda: Counter(p.state.value for p in self.processes.live()),
            containers=lambda: Counter(
                p.state.value for p in self.processes.live() if p.container is not None
            ),
        )
        self.events = EventBus(on_drop=self.metrics.count_dropped_events)
        self.calls = CallTable(catalog, metrics=self.metrics, events=self.events)
        SystemCalls(
            catalog=catalog,
            processes=self.processes,
            version=installed_version(),
            events=self.events,
            metrics=self.metrics,
        ).bind(self.calls)
        self.scheduler = Scheduler(self.processes)
        self.supervisor = Supervisor(
            self.processes, publish=self.events.publish, scheduler=self.scheduler
        )
        self.memory = MemoryBudget(self.processes, budget=memory_budget)
        self.policies = PolicyStore(in_use=self._running_under)
        PolicyCalls(self.policies).bind(self.calls)
        self.process_calls = ProcessCalls(
            self.processes, self.supervisor, self.memory, self.policies
        )
        self.process_calls.bind(self.calls)
        EnvironCalls(self.processes).bind(self.calls)
        self.mounts = MountTable()
        for point in ("/tmp", "/cache"):  # noqa: S108 - the kernel's namespace
            self.mounts.mount(VPath(point), MemFS(capacity=MEMORY_MOUNT_BYTES))
        files = FileCalls(self.mounts, self.processes)
        files.bind(self.calls)
        self.pipes = PipeTable()
        PipeCalls(self.pipes, self.processes).bind(self.calls)
        self.queues = QueueTable()
        QueueCalls(self.queues, self.processes).bind(self.calls)
        self.segments = ShmTable()
        ShmCalls(self.segments, self.processes).bind(self.calls)
        self.sockets = SocketTable()
        self.http = HttpClient()
        NetCalls(self.sockets, self.http, self.processes).bind(self.calls)
        MemoryCalls(
            self.processes, self.supervisor, self.memory,
            holders=[
                (self.pipes.holders, self.pipes.release),
                (self.queues.holders, self.queues.release),
                (self.segments.holders, self.segments.release),
                (files.fds.holders, files.fds.release),
                (self.sockets.holders, self.sockets.release),
            ],
        ).bind(self.calls)  # fmt: skip
        SchedCalls(self.scheduler, self.processes, self.supervisor).bind(self.calls)
        for spec, handler in extra:
            self.calls.bind(spec, handler)
        if missing := self.calls.unbound():
            msg = f"calls without a handler: {', '.join(missing)}"
            raise RuntimeError(msg)

    def _running_under(self, policy: str) -> int:
        """How many live processes run under the policy named ``policy``."""
        return sum(
            1 for p in self.processes.live() if p.policy is not None and p.policy.name == policy
        )
