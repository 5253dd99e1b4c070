"""Inter-process communication between kernel processes: pipes, queues, shared memory."""

from kernel.ipc._pipes import PIPE_BUDGET as PIPE_BUDGET
from kernel.ipc._pipes import PIPES_PER_PROCESS as PIPES_PER_PROCESS
from kernel.ipc._pipes import Pipe as Pipe
from kernel.ipc._pipes import PipeTable as PipeTable
from kernel.ipc._queues import QUEUE_BUDGET as QUEUE_BUDGET
from kernel.ipc._queues import QUEUES_PER_PROCESS as QUEUES_PER_PROCESS
from kernel.ipc._queues import Message as Message
from kernel.ipc._queues import Queue as Queue
from kernel.ipc._queues import QueueTable as QueueTable
from kernel.ipc._shm import SEGMENTS_PER_PROCESS as SEGMENTS_PER_PROCESS
from kernel.ipc._shm import SHM_BUDGET as SHM_BUDGET
from kernel.ipc._shm import Segment as Segment
from kernel.ipc._shm import ShmTable as ShmTable

__all__ = [
    "PIPES_PER_PROCESS",
    "PIPE_BUDGET",
    "QUEUES_PER_PROCESS",
    "QUEUE_BUDGET",
    "SEGMENTS_PER_PROCESS",
    "SHM_BUDGET",
    "Message",
    "Pipe",
    "PipeTable",
    "Queue",
    "QueueTable",
    "Segment",
    "ShmTable",
]
