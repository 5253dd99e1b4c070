"""The kernel's network for processes: sockets it holds, HTTP requests it makes.

Every destination is checked against the process's network policy first.
"""

from kernel.net._destinations import IPAddress as IPAddress
from kernel.net._destinations import check_destination as check_destination
from kernel.net._destinations import is_public as is_public
from kernel.net._destinations import resolve as resolve
from kernel.net._http import MAX_REDIRECTS as MAX_REDIRECTS
from kernel.net._http import HttpResponse as HttpResponse
from kernel.net._http import request as http_request
from kernel.net._sockets import MAX_SOCKETS as MAX_SOCKETS
from kernel.net._sockets import MAX_SOCKETS_PER_PROCESS as MAX_SOCKETS_PER_PROCESS
from kernel.net._sockets import KernelSocket as KernelSocket
from kernel.net._sockets import SocketTable as SocketTable
from kernel.net._sockets import net_error as net_error

__all__ = [
    "MAX_REDIRECTS",
    "MAX_SOCKETS",
    "MAX_SOCKETS_PER_PROCESS",
    "HttpResponse",
    "IPAddress",
    "KernelSocket",
    "SocketTable",
    "check_destination",
    "http_request",
    "is_public",
    "net_error",
    "resolve",
]
