import json

import pydantic
import pytest

from sandbox.capabilities import Capability, Grant
from sandbox.errors import NotFoundError
from sandbox.policy import (
    BUILTIN_POLICIES,
    DEFAULT_POLICY,
    Limits,
    NetworkMode,
    Policy,
    builtin_policy,
    parse_duration,
    parse_size,
)

MiB = 1 << 20


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512", 512),
        ("64k", 64 << 10),
        ("256M", 256 * MiB),
        ("256MiB", 256 * MiB),
        ("256mb", 256 * MiB),
        ("1.5G", 3 << 29),
        ("2t", 2 << 40),
        (" 8 M ", 8 * MiB),
    ],
)
def test_sizes_read_like_docker(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("30s", 30.0), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "M", "12Q", "-5M", "1e9"])
def test_bad_sizes_are_named(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_builtins():
    assert set(BUILTIN_POLICIES) == {"minimal", "standard", "network"}
    assert builtin_policy().name == DEFAULT_POLICY == "standard"
    minimal, standard, network = (builtin_policy(n) for n in ("minimal", "standard", "network"))
    assert minimal.limits.memory < standard.limits.memory
    assert minimal.capabilities < standard.capabilities < network.capabilities
    assert Grant(Capability.NETWORK_ACCESS) in network.capabilities
    assert (standard.network.mode, network.network.mode) == (NetworkMode.NONE, NetworkMode.EGRESS)
    with pytest.raises(NotFoundError, match="built-ins: minimal, standard, network"):
        builtin_policy("root")


def test_policies_round_trip_through_json():
    for policy in BUILTIN_POLICIES.values():
        document = policy.model_dump_json()
        assert Policy.model_validate_json(document) == policy
    dumped = json.loads(builtin_policy().model_dump_json())
    assert dumped["capabilities"] == sorted(dumped["capabilities"])  # stable on disk
    assert dumped["limits"]["memory"] == 256 * MiB
    assert "read_file:/storage/apps/{app}" in dumped["capabilities"]


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({"name": "Bad Name"}, ("name",)),
        ({"name": "x", "capabilities": ["fly"]}, ("capabilities", 0)),
        ({"name": "x", "capabilities": ["kill_process:/tmp"]}, ("capabilities", 0)),
        ({"name": "x", "capabilities": ["read_file:/tmp/../etc"]}, ("capabilities", 0)),
        ({"name": "x", "limits": {"memory": "1M"}}, ("limits", "memory")),
        ({"name": "x", "limits": {"cpus": 0}}, ("limits", "cpus")),
        ({"name": "x", "limits": {"pids": 0}}, ("limits", "pids")),
        ({"name": "x", "limits": {"timeout": "soon"}}, ("limits", "timeout")),
        ({"name": "x", "limits": {"memory": "64M", "memory_high": "128M"}}, ("limits",)),
        ({"name": "x", "limits": {"swap": 1}}, ("limits", "swap")),
        ({"name": "x", "network": {"mode": "allowlist"}}, ("network",)),
        ({"name": "x", "network": {"mode": "egress", "allow": ["1.2.3.4/32"]}}, ("network",)),
        (
            {"name": "x", "network": {"mode": "allowlist", "allow": ["300.1.1.1/32:80"]}},
            ("network", "allow", 0, "cidr"),
        ),
        (
            {"name": "x", "network": {"mode": "allowlist", "allow": ["10.0.0.0/8:99999"]}},
            ("network", "allow", 0, "port"),
        ),
        (
            {"name": "x", "mounts": [{"source": "etc", "destination": "/opt"}]},
            ("mounts", 0, "source"),
        ),
        (
            {"name": "x", "mounts": [{"source": "/etc", "destination": "/proc/x"}]},
            ("mounts", 0, "destination"),
        ),
        (
            {"name": "x", "mounts": [{"source": "/a/../b", "destination": "/opt"}]},
            ("mounts", 0, "source"),
        ),
        (
            {
                "name": "x",
                "mounts": [
                    {"source": "/a", "destination": "/o"},
                    {"source": "/b", "destination": "/o"},
                ],
            },
            ("mounts",),
        ),
        ({"name": "x", "runtime": "lxc"}, ("runtime",)),
    ],
)
def test_invalid_policies_name_the_field(document, loc):
    with pytest.raises(pydantic.ValidationError) as info:
        Policy.model_validate(document)
    assert [e["loc"] for e in info.value.errors()] == [loc]


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("/proc/x", "is inside /proc"),
        ("/etc", "is inside /etc"),
        ("/run", "would cover /run/agentos"),  # it would hide the pool's launcher
        ("/bin", "is inside /bin"),  # on merged-/usr hosts, a way into /usr
        ("/lib64/ld", "is inside /lib64"),  # the dynamic loader's home
    ],
)
def test_mounts_cannot_cover_what_the_sandbox_provides(destination, reason):
    with pytest.raises(pydantic.ValidationError, match=reason):
        Policy.model_validate(
            {"name": "x", "mounts": [{"source": "/srv", "destination": destination}]}
        )


@pytest.mark.parametrize("destination", ["/opt/app", "/run/app", "/srv", "/home/x"])
def test_mounts_elsewhere_are_accepted(destination):
    policy = Policy.model_validate(
        {"name": "x", "mounts": [{"source": "/srv", "destination": destination}]}
    )
    assert str(policy.mounts[0].destination) == destination


def test_allowlist_rules_parse_from_strings():
    policy = Policy.model_validate(
        {
            "name": "x",
            "network": {
                "mode": "allowlist",
                "allow": ["10.0.0.0/8:443", "192.0.2.7/32", "::1/128:22"],
            },
        }
    )
    assert [(str(r.cidr), r.port) for r in policy.network.allow] == [
        ("10.0.0.0/8", 443),
        ("192.0.2.7/32", None),
        ("::1/128", 22),
    ]


def test_limits_accept_human_units():
    limits = Limits(memory="1G", tmpfs="32M", timeout="90s", output="1M")
    assert (limits.memory, limits.tmpfs, limits.timeout, limits.output) == (
        1 << 30,
        32 * MiB,
        90.0,
        MiB,
    )
