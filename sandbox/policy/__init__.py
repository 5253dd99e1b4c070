"""Policies: what a sandbox may do and use. Pydantic models, validated at every boundary."""

from sandbox.policy._builtin import BUILTIN_POLICIES as BUILTIN_POLICIES
from sandbox.policy._builtin import DEFAULT_POLICY as DEFAULT_POLICY
from sandbox.policy._builtin import builtin_policy as builtin_policy
from sandbox.policy._model import AllowRule as AllowRule
from sandbox.policy._model import Limits as Limits
from sandbox.policy._model import Mount as Mount
from sandbox.policy._model import NetworkMode as NetworkMode
from sandbox.policy._model import NetworkPolicy as NetworkPolicy
from sandbox.policy._model import Policy as Policy
from sandbox.policy._model import RuntimeName as RuntimeName
from sandbox.policy._units import Bytes as Bytes
from sandbox.policy._units import Seconds as Seconds
from sandbox.policy._units import parse_duration as parse_duration
from sandbox.policy._units import parse_size as parse_size

__all__ = [
    "BUILTIN_POLICIES",
    "DEFAULT_POLICY",
    "AllowRule",
    "Bytes",
    "Limits",
    "Mount",
    "NetworkMode",
    "NetworkPolicy",
    "Policy",
    "RuntimeName",
    "Seconds",
    "builtin_policy",
    "parse_duration",
    "parse_size",
]
