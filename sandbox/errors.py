"""The project's error taxonomy: one root, a few categories, subclassed by every layer.

It lives in ``sandbox`` because ``sandbox`` is the bottom layer: the kernel and the
orchestrator import it, and ``sandbox`` imports nothing of theirs. Each layer derives its
own errors from these categories (``class SyscallNotFoundError(SyscallError,
NotFoundError)``) and each edge maps *categories*, in exactly one place: the kernel to
POSIX error codes (``kernel.abi``), the orchestrator to HTTP statuses.

    AgentOSError
     ├── NotFoundError              the named thing does not exist
     ├── AlreadyExistsError         it exists and must not
     ├── InvalidArgumentError       the caller's input is wrong, whatever the state
     ├── PermissionDeniedError      the caller may not do this
     ├── ResourceExhaustedError     a limit or quota was reached
     ├── FailedPreconditionError    the input is fine but the state does not allow it
     ├── UnavailableError           a dependency is down or not reachable; try again
     ├── DeadlineExceededError      it did not finish in time
     └── UnsupportedError           this system does not offer that operation
"""

from __future__ import annotations

import pydantic

__all__ = [
    "MAX_DETAILS",
    "AgentOSError",
    "AlreadyExistsError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnavailableError",
    "UnsupportedError",
    "category_of",
    "describe_invalid",
]


class AgentOSError(Exception):
    """Root of every error AgentOS raises on purpose."""


class NotFoundError(AgentOSError):
    """The named object does not exist."""


class AlreadyExistsError(AgentOSError):
    """The object exists already and the operation needs it not to."""


class InvalidArgumentError(AgentOSError, ValueError):
    """The caller's input is invalid regardless of the system's state."""


class PermissionDeniedError(AgentOSError):
    """The caller lacks the capability or ownership the operation needs."""


class ResourceExhaustedError(AgentOSError):
    """A limit, quota or budget was reached."""


class FailedPreconditionError(AgentOSError):
    """The input is valid but the current state does not allow the operation."""


class UnavailableError(AgentOSError):
    """A component the operation needs is down or unreachable; retrying may work."""


class DeadlineExceededError(AgentOSError):
    """The operation did not complete before its deadline."""


class UnsupportedError(AgentOSError):
    """The operation is not offered by this system or this configuration."""


_CATEGORIES = frozenset({
    NotFoundError,
    AlreadyExistsError,
    InvalidArgumentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    FailedPreconditionError,
    UnavailableError,
    DeadlineExceededError,
    UnsupportedError,
})  # fmt: skip


def category_of(exc: BaseException) -> type[AgentOSError] | None:
    """The category an error belongs to, for an edge to map; None for an uncategorised one.

    An error deriving from two categories belongs to the first in its method resolution
    order: the most specific.
    """
    for cls in type(exc).__mro__:
        if cls in _CATEGORIES:
            return cls
    return None


MAX_DETAILS = 16
"""How many invalid fields an answer names; the summary counts the rest."""


def describe_invalid(
    exc: pydantic.ValidationError, *, prefix: str = "", whole: str = "<input>"
) -> tuple[str, list[dict[str, str]]]:
    """A validation failure as a one-line summary and per-field details, for an answer.

    Details are ``{"loc": "args.pid", "msg": ..., "type": ...}``, at most
    :data:`MAX_DETAILS`: input with a million bad keys must not cost a million-line
    answer.

    Args:
        exc: the failure.
        prefix: put before every location (``args``).
        whole: the location shown for an error about the input as a whole.
    """
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    details = []
    for error in errors[:MAX_DETAILS]:
        loc = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        details.append({"loc": loc, "msg": error["msg"], "type": error["type"]})
    summary = "; ".join(f"{d['loc'] or whole}: {d['msg']}" for d in details)
    if len(errors) > MAX_DETAILS:
        summary += f" (and {len(errors) - MAX_DETAILS} more)"
    return summary, details
