"""Where a process may connect: none, egress (public addresses) or its allowlist."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi import SyscallPermissionError
from kernel.net import check_destination, is_public
from sandbox.policy import NetworkPolicy

NONE = NetworkPolicy()
EGRESS = NetworkPolicy(mode="egress")
ALLOW = NetworkPolicy(mode="allowlist", allow=["10.1.0.0/16:443", "192.0.2.7/32", "::1/128:80"])


def allowed(network, address, port):
    try:
        check_destination(network, ipaddress.ip_address(address), port)
    except SyscallPermissionError:
        return False
    return True


def test_the_administrator_goes_anywhere_and_none_goes_nowhere():
    assert allowed(None, "127.0.0.1", 22)
    assert not allowed(NONE, "93.184.216.34", 443)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("93.184.216.34", True), ("2606:2800:220:1::248", True), ("10.0.0.1", True),
        ("127.0.0.1", False), ("::1", False), ("169.254.169.254", False), ("fe80::1", False),
        ("224.0.0.1", False), ("0.0.0.0", False), ("::ffff:127.0.0.1", False),  # noqa: S104
        ("::ffff:169.254.169.254", False),
    ],
)  # fmt: skip
def test_egress_reaches_public_addresses_only(address, expected):
    assert allowed(EGRESS, address, 443) is expected


@pytest.mark.parametrize(
    ("address", "port", "expected"),
    [
        ("10.1.2.3", 443, True), ("10.1.2.3", 80, False), ("10.2.0.1", 443, False),
        ("192.0.2.7", 1, True), ("192.0.2.8", 1, False), ("::1", 80, True), ("::1", 81, False),
        ("::ffff:10.1.0.9", 443, True),
    ],
)  # fmt: skip
def test_an_allowlist_admits_its_cidr_port_pairs_only(address, port, expected):
    assert allowed(ALLOW, address, port) is expected


def test_a_refusal_names_the_address_and_why():
    with pytest.raises(SyscallPermissionError, match=r"10\.1\.2\.3:80: not in the process's"):
        check_destination(ALLOW, ipaddress.ip_address("10.1.2.3"), 80)


@given(
    address=st.ip_addresses(v=4),
    port=st.integers(1, 65535),
    prefix=st.integers(0, 32),
    rule_port=st.none() | st.integers(1, 65535),
)
def test_an_allowlist_rule_admits_exactly_its_network_and_port(address, port, prefix, rule_port):
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    rule = f"{network}:{rule_port}" if rule_port else f"{network}"
    policy = NetworkPolicy(mode="allowlist", allow=[rule])
    probe = ipaddress.ip_address((int(address) ^ (1 << (31 - prefix % 32))) % 2**32)
    for candidate in (address, probe):
        expected = candidate in network and rule_port in (None, port)
        assert allowed(policy, str(candidate), port) is expected


@given(address=st.ip_addresses())
def test_egress_and_is_public_agree(address):
    assert allowed(EGRESS, str(address), 443) is is_public(address)
