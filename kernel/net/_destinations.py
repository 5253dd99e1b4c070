"""Where a process may connect: its policy's network mode, checked address by address.

The kernel makes the connection (a socket it holds, or an HTTP request), so the check
is on the very address connected to: names are resolved first, and each address tried
is checked, which leaves no gap for a name that resolves differently the second time.
"""

from __future__ import annotations

import ipaddress
import socket

import trio

from kernel.abi import ErrorCode, SyscallNotFoundError, SyscallPermissionError
from sandbox.policy import NetworkMode, NetworkPolicy

__all__ = ["IPAddress", "check_destination", "is_public", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """Whether ``egress`` reaches it: not loopback, link-local, multicast or unspecified."""
    plain = _plain(address)
    return not (
        plain.is_loopback or plain.is_link_local or plain.is_multicast or plain.is_unspecified
    )


def check_destination(network: NetworkPolicy | None, address: IPAddress, port: int) -> None:
    """Refuse a destination the network policy does not allow (None: the administrator's).

    Raises:
        SyscallPermissionError: EPERM, naming the address and why.
    """
    if network is None:
        return
    plain = _plain(address)
    where = f"{plain}:{port}"
    if network.mode is NetworkMode.NONE:
        msg = f"{where}: the process's network mode is 'none'"
        raise SyscallPermissionError(msg)
    if network.mode is NetworkMode.EGRESS:
        if not is_public(plain):
            msg = f"{where}: egress reaches public addresses, not loopback or link-local ones"
            raise SyscallPermissionError(msg)
        return
    for rule in network.allow:
        if (
            plain.version == rule.cidr.version
            and plain in rule.cidr
            and (rule.port is None or rule.port == port)
        ):
            return
    msg = f"{where}: not in the process's allowlist"
    raise SyscallPermissionError(msg)


async def resolve(host: str, port: int, family: int, kind: int) -> list[IPAddress]:
    """The addresses of ``host`` for a socket of ``family`` and ``kind``, in order.

    Raises:
        SyscallNotFoundError: ENOENT, the name does not resolve.
    """
    try:
        found = await trio.socket.getaddrinfo(host, port, family, kind)
    except socket.gaierror as exc:
        msg = f"{host}: {exc.strerror}"
        raise SyscallNotFoundError(msg, code=ErrorCode.ENOENT) from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
