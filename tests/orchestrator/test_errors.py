import pytest

from kernel.abi import syscall_error
from orchestrator.errors import status_of
from sandbox import errors


@pytest.mark.parametrize(
    ("category", "status", "code"),
    [
        (errors.NotFoundError, 404, "not_found"),
        (errors.AlreadyExistsError, 409, "already_exists"),
        (errors.InvalidArgumentError, 400, "invalid_argument"),
        (errors.PermissionDeniedError, 403, "permission_denied"),
        (errors.ResourceExhaustedError, 429, "resource_exhausted"),
        (errors.FailedPreconditionError, 409, "failed_precondition"),
        (errors.UnavailableError, 503, "unavailable"),
        (errors.DeadlineExceededError, 504, "deadline_exceeded"),
        (errors.UnsupportedError, 501, "unsupported"),
    ],
)
def test_each_category_has_its_http_status(category, status, code):
    assert status_of(category("x")) == (status, code)


def test_kernel_errors_keep_their_category_over_http():
    assert status_of(syscall_error("ESRCH", "no such process 4")) == (404, "not_found")
    assert status_of(syscall_error("EACCES", "no")) == (403, "permission_denied")
    assert status_of(syscall_error("EIO", "broken")) == (500, "internal")


def test_uncategorised_errors_are_internal():
    assert status_of(errors.AgentOSError("x")) == (500, "internal")
