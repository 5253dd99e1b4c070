"""Constrained containers for app processes, and the vocabulary every layer shares.

This package imports nothing from the rest of AgentOS.
"""

from sandbox.capabilities import Capability as Capability
from sandbox.errors import AgentOSError as AgentOSError
from sandbox.errors import AlreadyExistsError as AlreadyExistsError
from sandbox.errors import DeadlineExceededError as DeadlineExceededError
from sandbox.errors import FailedPreconditionError as FailedPreconditionError
from sandbox.errors import InvalidArgumentError as InvalidArgumentError
from sandbox.errors import NotFoundError as NotFoundError
from sandbox.errors import PermissionDeniedError as PermissionDeniedError
from sandbox.errors import ResourceExhaustedError as ResourceExhaustedError
from sandbox.errors import UnavailableError as UnavailableError
from sandbox.errors import UnsupportedError as UnsupportedError

__all__ = [
    "AgentOSError",
    "AlreadyExistsError",
    "Capability",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnavailableError",
    "UnsupportedError",
]
