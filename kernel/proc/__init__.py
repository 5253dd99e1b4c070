"""Processes: the table of everything the kernel runs or tracks."""

from kernel.proc._output import OutputLog as OutputLog
from kernel.proc._table import KERNEL_PID as KERNEL_PID
from kernel.proc._table import IllegalTransitionError as IllegalTransitionError
from kernel.proc._table import Process as Process
from kernel.proc._table import ProcessTable as ProcessTable

__all__ = ["KERNEL_PID", "IllegalTransitionError", "OutputLog", "Process", "ProcessTable"]
