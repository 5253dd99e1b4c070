"""The built-in policies: ``minimal``, ``standard`` (the default) and ``network``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from types import MappingProxyType

from sandbox.capabilities import APP, FILE_CAPABILITIES, Capability, Grant
from sandbox.errors import NotFoundError
from sandbox.policy._model import Limits, NetworkMode, NetworkPolicy, Policy

__all__ = ["BUILTIN_POLICIES", "DEFAULT_POLICY", "builtin_policy"]

MiB = 1 << 20

_FILES = frozenset(
    Grant(capability, PurePosixPath(scope))
    for capability in sorted(FILE_CAPABILITIES)
    for scope in (f"/storage/apps/{APP}", "/tmp")  # noqa: S108 - the kernel's file namespace
)
_STANDARD_CAPS = _FILES | {
    Grant(Capability.SYSTEM_INFO),
    Grant(Capability.TIME_ACCESS),
    Grant(Capability.SEND_MESSAGE),
    Grant(Capability.RECEIVE_MESSAGE),
}

_MINIMAL = Policy(
    name="minimal",
    description="Computation only: no files beyond /tmp, no network, tight limits.",
    capabilities=frozenset({Grant(Capability.TIME_ACCESS)}),
    limits=Limits(
        memory=64 * MiB, cpus=0.25, pids=16, nofile=64, tmpfs=16 * MiB, timeout=10, output=MiB
    ),
)
_STANDARD = Policy(
    name="standard",
    description="An app's own files, IPC and system information; no network.",
    capabilities=_STANDARD_CAPS,
    limits=Limits(
        memory=256 * MiB,
        cpus=1.0,
        pids=128,
        nofile=1024,
        tmpfs=64 * MiB,
        disk=256 * MiB,
        timeout=300,
        output=16 * MiB,
    ),
)
_NETWORK = Policy(
    name="network",
    description="The standard profile plus outbound network access.",
    capabilities=_STANDARD_CAPS | {Grant(Capability.NETWORK_ACCESS)},
    limits=_STANDARD.limits,
    network=NetworkPolicy(mode=NetworkMode.EGRESS),
)

BUILTIN_POLICIES: Mapping[str, Policy] = MappingProxyType(
    {policy.name: policy for policy in (_MINIMAL, _STANDARD, _NETWORK)}
)
DEFAULT_POLICY = "standard"


def builtin_policy(name: str = DEFAULT_POLICY) -> Policy:
    """A built-in policy by name.

    Raises:
        NotFoundError: no built-in policy has that name.
    """
    try:
        return BUILTIN_POLICIES[name]
    except KeyError:
        known = ", ".join(BUILTIN_POLICIES)
        msg = f"no built-in policy {name!r} (built-ins: {known})"
        raise NotFoundError(msg) from None
