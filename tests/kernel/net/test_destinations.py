"""Where a process may connect: none, egress (public addresses) or its allowlist."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi import SyscallPermissionError
from kernel.net import check_destination, check_reachable, is_public
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


@pytest.mark.parametrize(
    "address", ["255.255.255.255", "0.1.2.3", "::ffff:255.255.255.255", "::", "::ffff:0.0.0.0"]
)
def test_egress_refuses_broadcast_and_this_network(address):
    assert not allowed(EGRESS, address, 53)


def test_an_ipv4_mapped_rule_admits_the_addresses_it_maps():
    mapped = NetworkPolicy(mode="allowlist", allow=["::ffff:10.0.0.0/104:443"])
    assert allowed(mapped, "10.9.8.7", 443)
    assert allowed(mapped, "::ffff:10.9.8.7", 443)
    assert not allowed(mapped, "11.0.0.1", 443)


def test_a_none_network_is_refused_before_any_name_is_looked_up():
    with pytest.raises(SyscallPermissionError, match=r"secret\.example\.invalid: .* 'none'"):
        check_reachable(NONE, "secret.example.invalid")
    for network in (None, EGRESS, ALLOW):
        check_reachable(network, "example.invalid")  # these check each address instead


special = st.one_of(
    st.ip_addresses(network="127.0.0.0/8"),
    st.ip_addresses(network="169.254.0.0/16"),
    st.ip_addresses(network="224.0.0.0/4"),
    st.ip_addresses(network="0.0.0.0/8"),
    st.ip_addresses(network="::1/128"),
    st.ip_addresses(network="fe80::/10"),
    st.ip_addresses(network="ff00::/8"),
)


@given(address=special, port=st.integers(1, 65535))
def test_egress_never_reaches_the_host_its_link_or_a_group(address, port):
    assert not allowed(EGRESS, str(address), port)
    if address.version == 4:  # nor in IPv4-mapped form
        assert not allowed(EGRESS, f"::ffff:{address}", port)


@given(address=st.ip_addresses(v=4), port=st.integers(1, 65535))
def test_an_ipv4_mapped_address_is_judged_as_the_ipv4_address(address, port):
    mapped = f"::ffff:{address}"
    for network in (EGRESS, ALLOW, NONE):
        assert allowed(network, mapped, port) is allowed(network, str(address), port)


@given(address=st.ip_addresses(), port=st.integers(1, 65535))
def test_the_administrator_goes_anywhere_and_a_none_network_nowhere(address, port):
    assert allowed(None, str(address), port)
    assert not allowed(NONE, str(address), port)


@given(address=st.ip_addresses(), port=st.integers(1, 65535))
def test_every_refusal_names_the_address_and_port(address, port):
    if allowed(ALLOW, str(address), port):
        return
    with pytest.raises(SyscallPermissionError) as refused:
        check_destination(ALLOW, address, port)
    plain = address.ipv4_mapped or address if address.version == 6 else address
    assert refused.value.message.startswith(f"{plain}:{port}: ")
