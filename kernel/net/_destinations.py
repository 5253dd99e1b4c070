"""Where a process may connect: its policy's network mode, checked address by address.

The kernel makes the connection (a socket it holds, or an HTTP request), so the check
is on the very address connected to: names are resolved first, and each address tried
is checked, which leaves no gap for a name that resolves differently the second time.
"""

from __future__ import annotations

import ipaddress
import socket

import trio

from kernel.abi import (
    ErrorCode,
    SyscallInvalidArgumentError,
    SyscallNotFoundError,
    SyscallPermissionError,
    SyscallUnavailableError,
)
from sandbox.policy import NetworkMode, NetworkPolicy

__all__ = ["IPAddress", "check_destination", "check_reachable", "is_public", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # "this host": 0.0.0.0 reaches loopback
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_MAPPED_PREFIX = 96  # ::ffff:0:0/96, IPv4 as IPv6
_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _plain_network(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A rule's network within ``::ffff:0:0/96`` as the IPv4 network it maps."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= _MAPPED_PREFIX:
        first = network.network_address.ipv4_mapped
        if first is not None:
            return ipaddress.IPv4Network(f"{first}/{network.prefixlen - _MAPPED_PREFIX}")
    return network


def is_public(address: IPAddress) -> bool:
    """Whether ``egress`` reaches it: a unicast address off the host and its link.

    Not loopback, link-local (169.254.169.254 among them), multicast, broadcast or
    unspecified ("this host", 0.0.0.0/8), nor an IPv4-mapped form of one of those.
    """
    plain = _plain(address)
    if isinstance(plain, ipaddress.IPv4Address) and (plain in _THIS_NETWORK or plain == _BROADCAST):
        return False
    return not (
        plain.is_loopback or plain.is_link_local or plain.is_multicast or plain.is_unspecified
    )


def check_reachable(network: NetworkPolicy | None, host: str) -> None:
    """Refuse, before its name is even looked up, a host a ``none`` network cannot reach.

    So a process with no network cannot leak data through the names it asks for.

    Raises:
        SyscallPermissionError: EPERM, the network mode is ``none``.
    """
    if network is not None and network.mode is NetworkMode.NONE:
        msg = f"{host}: the process's network mode is 'none'"
        raise SyscallPermissionError(msg)


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
            msg = (
                f"{where}: egress reaches public unicast addresses, not loopback, link-local, "
                "multicast, broadcast or unspecified ones"
            )
            raise SyscallPermissionError(msg)
        return
    for rule in network.allow:
        cidr = _plain_network(rule.cidr)
        if (
            plain.version == cidr.version
            and plain in cidr
            and (rule.port is None or rule.port == port)
        ):
            return
    msg = f"{where}: not in the process's allowlist"
    raise SyscallPermissionError(msg)


async def resolve(host: str, port: int, family: int, kind: int) -> list[IPAddress]:
    """The addresses of ``host`` for a socket of ``family`` and ``kind``, in order.

    Raises:
        SyscallNotFoundError: ENOENT, the name does not resolve.
        SyscallUnavailableError: EAGAIN, the resolver could not answer now.
        SyscallInvalidArgumentError: EINVAL, an address of the other family.
    """
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and family and _FAMILIES[literal.version] != family:
        msg = f"{host} is an IPv{literal.version} address, not one of the socket's family"
        raise SyscallInvalidArgumentError(msg)
    try:
        found = await trio.socket.getaddrinfo(host, port, family, kind)
    except socket.gaierror as exc:
        msg = f"{host}: {exc.strerror}"
        if exc.errno == socket.EAI_AGAIN:
            raise SyscallUnavailableError(msg) from None
        raise SyscallNotFoundError(msg, code=ErrorCode.ENOENT) from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
