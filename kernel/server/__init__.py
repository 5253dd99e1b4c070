"""The kernel socket servers: the admin socket, and one socket per sandboxed process."""

from kernel.server._connection import Connection as Connection
from kernel.server._listener import PeerCredentials as PeerCredentials
from kernel.server._listener import bind_admin_socket as bind_admin_socket
from kernel.server._listener import check_socket_path as check_socket_path
from kernel.server._listener import peer_credentials as peer_credentials
from kernel.server._listener import serve_admin_socket as serve_admin_socket
from kernel.server._process import bind_process_socket as bind_process_socket
from kernel.server._process import serve_process_socket as serve_process_socket

__all__ = [
    "Connection",
    "PeerCredentials",
    "bind_admin_socket",
    "bind_process_socket",
    "check_socket_path",
    "peer_credentials",
    "serve_admin_socket",
    "serve_process_socket",
]
