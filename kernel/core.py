"""The kernel's state and its complete call table, independent of any socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kernel.abi import CATALOG, CallSpec, Catalog, WireModel
from kernel.calls import CallContext, CallTable
from kernel.calls.process import ProcessCalls
from kernel.calls.system import SystemCalls
from kernel.proc import ProcessTable
from sandbox import installed_version

__all__ = ["Kernel"]

ExtraCall = tuple[CallSpec[Any, Any], Callable[[CallContext, Any], Awaitable[WireModel]]]


class Kernel:
    """Subsystems plus the table that routes every syscall to them.

    Args:
        extra_calls: further (spec, handler) pairs, for embedding or tests; they join
            the standard catalog.

    Raises:
        RuntimeError: a call in the catalog has no handler.
    """

    def __init__(self, *, extra_calls: Iterable[ExtraCall] = ()) -> None:
        extra = list(extra_calls)
        catalog = Catalog.of(CATALOG, (spec for spec, _ in extra))
        self.processes = ProcessTable()
        self.calls = CallTable(catalog)
        SystemCalls(catalog=catalog, processes=self.processes, version=installed_version()).bind(
            self.calls
        )
        ProcessCalls(self.processes).bind(self.calls)
        for spec, handler in extra:
            self.calls.bind(spec, handler)
        if missing := self.calls.unbound():
            msg = f"calls without a handler: {', '.join(missing)}"
            raise RuntimeError(msg)
