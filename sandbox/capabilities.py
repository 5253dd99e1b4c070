"""The capability vocabulary: what a process may ask the kernel to do.

Policies (this package) grant capabilities; the kernel checks the one each syscall
names before it acts. The first fourteen are the original system's types; the last two
cover the scheduler and memory controls our calls add.
"""

from __future__ import annotations

import enum

__all__ = ["Capability"]


class Capability(enum.StrEnum):
    """A kind of authority a process can hold. Values are the wire names."""

    READ_FILE = "read_file"
    WRITE_FILE = "write_file"
    CREATE_FILE = "create_file"
    DELETE_FILE = "delete_file"
    LIST_DIRECTORY = "list_directory"
    SPAWN_PROCESS = "spawn_process"
    KILL_PROCESS = "kill_process"
    NETWORK_ACCESS = "network_access"
    BIND_PORT = "bind_port"
    SYSTEM_INFO = "system_info"
    TIME_ACCESS = "time_access"
    SEND_MESSAGE = "send_message"
    RECEIVE_MESSAGE = "receive_message"
    NETWORK_NAMESPACE = "network_namespace"
    SCHEDULER_CONTROL = "scheduler_control"
    MEMORY_CONTROL = "memory_control"
