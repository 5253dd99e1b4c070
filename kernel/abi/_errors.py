"""Syscall errors and their POSIX codes: the kernel's one mapping from error categories.

On the wire an error is ``{"code": "ENOENT", "message": "...", "details": [...]?}``. The
kernel turns any exception into a code with :func:`error_code`; the client turns a code
back into an exception with :func:`syscall_error`, whose class derives from the category,
so callers catch ``NotFoundError`` whether they talk to the kernel or not.

    SyscallError (AgentOSError)            carries .code, .message, .details, .call
     ├── SyscallNotFoundError              ENOENT, ESRCH
     ├── SyscallExistsError                EEXIST, EADDRINUSE
     ├── SyscallInvalidArgumentError       EINVAL, EBADF, ENOTDIR, EISDIR, ENOTEMPTY, EMSGSIZE
     ├── SyscallPermissionError            EPERM, EACCES
     ├── SyscallExhaustedError             ENOMEM, ENOSPC, EMFILE, ENFILE, EDQUOT
     ├── SyscallPreconditionError          EBUSY, EPIPE, ENOTCONN
     ├── SyscallUnavailableError           EAGAIN, ECONNREFUSED, ECONNRESET, ENETUNREACH,
     │                                     EHOSTUNREACH
     ├── SyscallTimeoutError               ETIMEDOUT
     └── SyscallUnsupportedError           ENOSYS
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.errors import (
    AgentOSError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
    UnsupportedError,
    category_of,
)

__all__ = [
    "ErrorCode",
    "SyscallError",
    "SyscallExhaustedError",
    "SyscallExistsError",
    "SyscallInvalidArgumentError",
    "SyscallNotFoundError",
    "SyscallPermissionError",
    "SyscallPreconditionError",
    "SyscallTimeoutError",
    "SyscallUnavailableError",
    "SyscallUnsupportedError",
    "error_code",
    "syscall_error",
]


class ErrorCode(enum.StrEnum):
    """POSIX error names used on the kernel socket."""

    EPERM = "EPERM"
    EACCES = "EACCES"
    ENOENT = "ENOENT"
    ESRCH = "ESRCH"
    EEXIST = "EEXIST"
    EINVAL = "EINVAL"
    EBADF = "EBADF"
    ENOTDIR = "ENOTDIR"
    EISDIR = "EISDIR"
    ENOTEMPTY = "ENOTEMPTY"
    EMSGSIZE = "EMSGSIZE"
    ENOMEM = "ENOMEM"
    ENOSPC = "ENOSPC"
    EMFILE = "EMFILE"
    EDQUOT = "EDQUOT"
    EBUSY = "EBUSY"
    EPIPE = "EPIPE"
    EAGAIN = "EAGAIN"
    ECONNREFUSED = "ECONNREFUSED"
    ECONNRESET = "ECONNRESET"
    EADDRINUSE = "EADDRINUSE"
    ENOTCONN = "ENOTCONN"
    ENETUNREACH = "ENETUNREACH"
    EHOSTUNREACH = "EHOSTUNREACH"
    ENFILE = "ENFILE"
    ETIMEDOUT = "ETIMEDOUT"
    ECANCELED = "ECANCELED"
    ENOSYS = "ENOSYS"
    EIO = "EIO"


class SyscallError(AgentOSError):
    """A syscall failed with a POSIX code.

    Kernel code raises the subclass of the failure's category, optionally with a more
    precise code (``SyscallNotFoundError("no such process", code=ErrorCode.ESRCH)``);
    the client raises the same classes when a reply carries an error.
    """

    default_code: ErrorCode = ErrorCode.EIO

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
        call: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = list(details) if details else []
        self.call = call

    def __str__(self) -> str:
        where = f"{self.call}: " if self.call else ""
        return f"{where}{self.code}: {self.message}"


class SyscallNotFoundError(SyscallError, NotFoundError):
    """ENOENT and kin: the named object does not exist."""

    default_code = ErrorCode.ENOENT


class SyscallExistsError(SyscallError, AlreadyExistsError):
    """EEXIST: the object exists already."""

    default_code = ErrorCode.EEXIST


class SyscallInvalidArgumentError(SyscallError, InvalidArgumentError):
    """EINVAL and kin: the request is malformed or its arguments are wrong."""

    default_code = ErrorCode.EINVAL


class SyscallPermissionError(SyscallError, PermissionDeniedError):
    """EPERM, EACCES: the caller lacks a capability or ownership."""

    default_code = ErrorCode.EPERM


class SyscallExhaustedError(SyscallError, ResourceExhaustedError):
    """ENOMEM and kin: a limit or quota was reached."""

    default_code = ErrorCode.ENOMEM


class SyscallPreconditionError(SyscallError, FailedPreconditionError):
    """EBUSY and kin: the object's state does not allow the operation."""

    default_code = ErrorCode.EBUSY


class SyscallUnavailableError(SyscallError, UnavailableError):
    """EAGAIN and kin: try again later; also a lost kernel connection."""

    default_code = ErrorCode.EAGAIN


class SyscallTimeoutError(SyscallError, DeadlineExceededError):
    """ETIMEDOUT: the call did not finish in time."""

    default_code = ErrorCode.ETIMEDOUT


class SyscallUnsupportedError(SyscallError, UnsupportedError):
    """ENOSYS: no such call, or not offered in this configuration."""

    default_code = ErrorCode.ENOSYS


# Category -> default code. The one place the kernel maps error categories.
_CATEGORY_CODES: Mapping[type[AgentOSError], ErrorCode] = {
    NotFoundError: ErrorCode.ENOENT,
    AlreadyExistsError: ErrorCode.EEXIST,
    InvalidArgumentError: ErrorCode.EINVAL,
    PermissionDeniedError: ErrorCode.EPERM,
    ResourceExhaustedError: ErrorCode.ENOMEM,
    FailedPreconditionError: ErrorCode.EBUSY,
    UnavailableError: ErrorCode.EAGAIN,
    DeadlineExceededError: ErrorCode.ETIMEDOUT,
    UnsupportedError: ErrorCode.ENOSYS,
}

# Code -> exception class raised by clients. Every ErrorCode appears exactly once.
_CODE_CLASSES: Mapping[ErrorCode, type[SyscallError]] = {
    ErrorCode.ENOENT: SyscallNotFoundError,
    ErrorCode.ESRCH: SyscallNotFoundError,
    ErrorCode.EEXIST: SyscallExistsError,
    ErrorCode.EINVAL: SyscallInvalidArgumentError,
    ErrorCode.EBADF: SyscallInvalidArgumentError,
    ErrorCode.ENOTDIR: SyscallInvalidArgumentError,
    ErrorCode.EISDIR: SyscallInvalidArgumentError,
    ErrorCode.ENOTEMPTY: SyscallInvalidArgumentError,
    ErrorCode.EMSGSIZE: SyscallInvalidArgumentError,
    ErrorCode.EPERM: SyscallPermissionError,
    ErrorCode.EACCES: SyscallPermissionError,
    ErrorCode.ENOMEM: SyscallExhaustedError,
    ErrorCode.ENOSPC: SyscallExhaustedError,
    ErrorCode.EMFILE: SyscallExhaustedError,
    ErrorCode.EDQUOT: SyscallExhaustedError,
    ErrorCode.EBUSY: SyscallPreconditionError,
    ErrorCode.EPIPE: SyscallPreconditionError,
    ErrorCode.EAGAIN: SyscallUnavailableError,
    ErrorCode.ECONNREFUSED: SyscallUnavailableError,
    ErrorCode.ECONNRESET: SyscallUnavailableError,
    ErrorCode.EADDRINUSE: SyscallExistsError,
    ErrorCode.ENOTCONN: SyscallPreconditionError,
    ErrorCode.ENETUNREACH: SyscallUnavailableError,
    ErrorCode.EHOSTUNREACH: SyscallUnavailableError,
    ErrorCode.ENFILE: SyscallExhaustedError,
    ErrorCode.ETIMEDOUT: SyscallTimeoutError,
    ErrorCode.ECANCELED: SyscallUnavailableError,
    ErrorCode.ENOSYS: SyscallUnsupportedError,
    ErrorCode.EIO: SyscallError,
}


def error_code(exc: BaseException) -> ErrorCode:
    """The POSIX code a failure is reported with; EIO for anything uncategorised."""
    if isinstance(exc, SyscallError):
        return exc.code
    category = category_of(exc)
    return ErrorCode.EIO if category is None else _CATEGORY_CODES[category]


def syscall_error(
    code: str,
    message: str,
    *,
    details: Sequence[Mapping[str, Any]] | None = None,
    call: str | None = None,
) -> SyscallError:
    """Build the typed exception for an error reply; unknown codes become EIO-class errors."""
    try:
        known = ErrorCode(code)
    except ValueError:
        return SyscallError(f"{message} (unknown error code {code!r})", details=details, call=call)
    return _CODE_CLASSES[known](message, code=known, details=details, call=call)
