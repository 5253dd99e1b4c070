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


@pytest.mark.parametrize("code", list(ErrorCode))
def test_codes_survive_the_round_trip(code):
    exc = syscall_error(code, "boom", call="x.y")
    assert isinstance(exc, SyscallError)
    assert exc.code == code
    assert error_code(exc) == code
    assert str(exc) == f"x.y: {code}: boom"


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
