"""The kernel's network for processes: sockets it holds, HTTP requests it makes.

Every destination is checked against the process's network policy first.
"""

from kernel.net._destinations import IPAddress as IPAddress
from kernel.net._destinations import check_destination as check_destination
from kernel.net._destinations import check_reachable as check_reachable
from kernel.net._destinations import is_public as is_public
from kernel.net._destinations import resolve as resolve
from kernel.net._http import MAX_HTTP_BUFFERED as MAX_HTTP_BUFFERED
from kernel.net._http import MAX_REDIRECTS as MAX_REDIRECTS
from kernel.net._http import MAX_REQUESTS_PER_PROCESS as MAX_REQUESTS_PER_PROCESS
from kernel.net._http import HttpClient as HttpClient
from kernel.net._http import HttpRequest as HttpRequest
from kernel.net._http import HttpResponse as HttpResponse
from kernel.net._sockets import MAX_SOCKETS as MAX_SOCKETS
from kernel.net._sockets import MAX_SOCKETS_PER_PROCESS as MAX_SOCKETS_PER_PROCESS
from kernel.net._sockets import KernelSocket as KernelSocket
from kernel.net._sockets import SocketTable as SocketTable
from kernel.net._sockets import net_error as net_error

__all__ = [
    "MAX_HTTP_BUFFERED",
    "MAX_REDIRECTS",
    "MAX_REQUESTS_PER_PROCESS",
    "MAX_SOCKETS",
    "MAX_SOCKETS_PER_PROCESS",
    "HttpClient",
    "HttpRequest",
    "HttpResponse",
    "IPAddress",
    "KernelSocket",
    "SocketTable",
    "check_destination",
    "check_reachable",
    "is_public",
    "net_error",
    "resolve",
]
