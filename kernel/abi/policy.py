"""``policy.*``: the sandbox policies processes are spawned under.

Built-ins (``minimal``, ``standard``, ``network``) cannot change; the administrators add,
replace and delete their own. A policy travels as its JSON form (sandbox.policy.Policy:
``name``, ``description``, ``capabilities``, ``limits``, ``network``, ``mounts``,
``runtime``), validated by the kernel; an invalid one is EINVAL naming each bad field.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kernel.abi._catalog import CallSpec, WireModel
from kernel.abi.system import NoArgs
from sandbox.capabilities import Capability

__all__ = [
    "POLICY_DELETE",
    "POLICY_GET",
    "POLICY_LIST",
    "POLICY_PUT",
    "PolicyEntry",
    "PolicyListResult",
    "PolicyNameArgs",
    "PolicyPutArgs",
    "PolicyPutResult",
]

POLICY_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"  # as sandbox.policy.Policy.name


class PolicyNameArgs(WireModel):
    """Arguments naming one policy."""

    name: str = Field(pattern=POLICY_NAME_PATTERN)


class PolicyEntry(WireModel):
    """One policy as the kernel holds it."""

    name: str
    builtin: bool = Field(description="built in: it cannot change")
    in_use: int = Field(description="live processes running under it")
    policy: dict[str, Any] = Field(description="its JSON form (sandbox.policy.Policy)")


class PolicyListResult(WireModel):
    """Result of ``policy.list``."""

    policies: list[PolicyEntry]


class PolicyPutArgs(WireModel):
    """Arguments of ``policy.put``."""

    policy: dict[str, Any] = Field(description="the policy's JSON form; its name says which")
    create_only: bool = Field(default=False, description="EEXIST rather than replace")


class PolicyPutResult(WireModel):
    """Result of ``policy.put``."""

    created: bool
    entry: PolicyEntry


POLICY_LIST = CallSpec(
    "policy.list", "Every policy: the built-ins, then the administrators' own.", NoArgs,
    PolicyListResult, Capability.SYSTEM_INFO,
)  # fmt: skip
POLICY_GET = CallSpec(
    "policy.get", "One policy.", PolicyNameArgs, PolicyEntry, Capability.SYSTEM_INFO,
)  # fmt: skip
POLICY_PUT = CallSpec(
    "policy.put", "Add or replace a policy (administrators only; new processes get it).",
    PolicyPutArgs, PolicyPutResult, Capability.SYSTEM_INFO,
)  # fmt: skip
POLICY_DELETE = CallSpec(
    "policy.delete", "Delete a policy no live process runs under (administrators only).",
    PolicyNameArgs, PolicyEntry, Capability.SYSTEM_INFO,
)  # fmt: skip

SPECS = (POLICY_LIST, POLICY_GET, POLICY_PUT, POLICY_DELETE)
