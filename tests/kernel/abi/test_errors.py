import pytest

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallNotFoundError,
    SyscallPermissionError,
    error_code,
    syscall_error,
)
from kernel.abi._errors import _CODE_CLASSES
from sandbox import errors


def test_every_code_has_exactly_one_client_class():
    assert set(_CODE_CLASSES) == set(ErrorCode)


# The table in docs/kernel-socket.md, written out independently of the code.
DOCUMENTED_CATEGORIES = {
    "ENOENT": errors.NotFoundError,
    "ESRCH": errors.NotFoundError,
    "EEXIST": errors.AlreadyExistsError,
    "EADDRINUSE": errors.AlreadyExistsError,
    "EINVAL": errors.InvalidArgumentError,
    "EBADF": errors.InvalidArgumentError,
    "ENOTDIR": errors.InvalidArgumentError,
    "EISDIR": errors.InvalidArgumentError,
    "ENOTEMPTY": errors.InvalidArgumentError,
    "EMSGSIZE": errors.InvalidArgumentError,
    "EPERM": errors.PermissionDeniedError,
    "EACCES": errors.PermissionDeniedError,
    "ENOMEM": errors.ResourceExhaustedError,
    "ENOSPC": errors.ResourceExhaustedError,
    "EMFILE": errors.ResourceExhaustedError,
    "ENFILE": errors.ResourceExhaustedError,
    "EDQUOT": errors.ResourceExhaustedError,
    "EBUSY": errors.FailedPreconditionError,
    "EPIPE": errors.FailedPreconditionError,
    "ENOTCONN": errors.FailedPreconditionError,
    "EAGAIN": errors.UnavailableError,
    "ECONNREFUSED": errors.UnavailableError,
    "ECONNRESET": errors.UnavailableError,
    "ENETUNREACH": errors.UnavailableError,
    "EHOSTUNREACH": errors.UnavailableError,
    "ECANCELED": errors.UnavailableError,
    "ETIMEDOUT": errors.DeadlineExceededError,
    "ENOSYS": errors.UnsupportedError,
}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_code_reaches_clients_as_its_documented_category(code):
    exc = syscall_error(code, "boom", call="x.y")
    assert exc.code == code
    assert str(exc) == f"x.y: {code}: boom"
    if code == ErrorCode.EIO:
        assert type(exc) is SyscallError
    else:
        assert isinstance(exc, DOCUMENTED_CATEGORIES[code])
        # and the kernel reports that category with a code of the same category
        assert isinstance(
            syscall_error(error_code(DOCUMENTED_CATEGORIES[code]("x")), "x"),
            DOCUMENTED_CATEGORIES[code],
        )


def test_the_documented_table_covers_every_code():
    assert set(DOCUMENTED_CATEGORIES) | {"EIO"} == {str(c) for c in ErrorCode}


@pytest.mark.parametrize(
    ("category", "code"),
    [
        (errors.NotFoundError, ErrorCode.ENOENT),
        (errors.AlreadyExistsError, ErrorCode.EEXIST),
        (errors.InvalidArgumentError, ErrorCode.EINVAL),
        (errors.PermissionDeniedError, ErrorCode.EPERM),
        (errors.ResourceExhaustedError, ErrorCode.ENOMEM),
        (errors.FailedPreconditionError, ErrorCode.EBUSY),
        (errors.UnavailableError, ErrorCode.EAGAIN),
        (errors.DeadlineExceededError, ErrorCode.ETIMEDOUT),
        (errors.UnsupportedError, ErrorCode.ENOSYS),
    ],
)
def test_categories_map_to_posix_codes(category, code):
    class Specific(category):
        pass

    assert error_code(Specific("x")) == code


def test_uncategorised_failures_are_eio():
    assert error_code(RuntimeError("x")) == ErrorCode.EIO
    assert error_code(errors.AgentOSError("x")) == ErrorCode.EIO


def test_client_errors_are_instances_of_their_category():
    exc = syscall_error("ESRCH", "no such process 4")
    assert isinstance(exc, SyscallNotFoundError)
    assert isinstance(exc, errors.NotFoundError)
    assert isinstance(syscall_error("EACCES", "no"), SyscallPermissionError)


def test_unknown_codes_keep_their_name_in_the_message():
    exc = syscall_error("EWEIRD", "strange")
    assert type(exc) is SyscallError
    assert exc.code == ErrorCode.EIO
    assert "EWEIRD" in exc.message


def test_specific_code_overrides_the_category_default():
    exc = SyscallNotFoundError("gone", code=ErrorCode.ESRCH)
    assert error_code(exc) == ErrorCode.ESRCH
