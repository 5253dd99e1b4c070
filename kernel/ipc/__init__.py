"""Inter-process communication between kernel processes: pipes."""

from kernel.ipc._pipes import PIPE_BUDGET as PIPE_BUDGET
from kernel.ipc._pipes import PIPES_PER_PROCESS as PIPES_PER_PROCESS
from kernel.ipc._pipes import Pipe as Pipe
from kernel.ipc._pipes import PipeTable as PipeTable

__all__ = ["PIPES_PER_PROCESS", "PIPE_BUDGET", "Pipe", "PipeTable"]
