"""Syscall implementations, one module per category, and the table that dispatches to them."""

from kernel.calls._table import CallContext as CallContext
from kernel.calls._table import Caller as Caller
from kernel.calls._table import CallTable as CallTable
from kernel.calls._table import Handler as Handler
from kernel.calls.process import ProcessCalls as ProcessCalls
from kernel.calls.system import SystemCalls as SystemCalls

__all__ = ["CallContext", "CallTable", "Caller", "Handler", "ProcessCalls", "SystemCalls"]
