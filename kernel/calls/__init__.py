"""Syscall implementations, one module per category, and the table that dispatches to them."""

from kernel.calls._table import CallContext as CallContext
from kernel.calls._table import Caller as Caller
from kernel.calls._table import CallTable as CallTable
from kernel.calls._table import Handler as Handler

__all__ = ["CallContext", "CallTable", "Caller", "Handler"]
