"""Syscall implementations, one module per category, and the table that dispatches to them."""

from kernel.calls._table import ActAs as ActAs
from kernel.calls._table import CallContext as CallContext
from kernel.calls._table import Caller as Caller
from kernel.calls._table import CallTable as CallTable
from kernel.calls._table import Handler as Handler
from kernel.calls._table import own_pid_only as own_pid_only

__all__ = ["ActAs", "CallContext", "CallTable", "Caller", "Handler", "own_pid_only"]
