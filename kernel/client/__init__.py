"""How everything outside the kernel talks to it: the client, the ABI, and discovery.

The orchestrator imports the kernel only through this package (DESIGN 2).
"""

from kernel import abi as abi
from kernel.client._client import CallStream as CallStream
from kernel.client._client import KernelClient as KernelClient
from kernel.client._client import open_kernel_client as open_kernel_client
from kernel.client._discovery import SYSTEM_DATA_DIR as SYSTEM_DATA_DIR
from kernel.client._discovery import DataLayout as DataLayout
from kernel.client._discovery import KernelRecord as KernelRecord
from kernel.client._discovery import default_data_dir as default_data_dir
from kernel.client._discovery import locate_admin_socket as locate_admin_socket
from kernel.client._discovery import read_kernel_record as read_kernel_record
from kernel.client._discovery import write_kernel_record as write_kernel_record
from kernel.client._settings import MAX_SOCKET_PATH_BYTES as MAX_SOCKET_PATH_BYTES
from kernel.client._settings import KernelLocation as KernelLocation

__all__ = [
    "MAX_SOCKET_PATH_BYTES",
    "SYSTEM_DATA_DIR",
    "CallStream",
    "DataLayout",
    "KernelClient",
    "KernelLocation",
    "KernelRecord",
    "abi",
    "default_data_dir",
    "locate_admin_socket",
    "open_kernel_client",
    "read_kernel_record",
    "write_kernel_record",
]
