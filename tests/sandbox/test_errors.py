import pytest

from sandbox import errors
from sandbox.errors import category_of
from sandbox.runtime import RuntimeFailedError

CATEGORIES = [
    errors.NotFoundError,
    errors.AlreadyExistsError,
    errors.InvalidArgumentError,
    errors.PermissionDeniedError,
    errors.ResourceExhaustedError,
    errors.FailedPreconditionError,
    errors.UnavailableError,
    errors.DeadlineExceededError,
    errors.UnsupportedError,
]


@pytest.mark.parametrize("category", CATEGORIES)
def test_a_layers_own_error_belongs_to_its_category(category):
    class LayerError(category):
        pass

    assert category_of(LayerError("x")) is category
    assert category_of(category("x")) is category


def test_the_first_category_in_the_mro_wins():
    class Both(errors.NotFoundError, errors.PermissionDeniedError):
        pass

    assert category_of(Both("x")) is errors.NotFoundError
    assert category_of(RuntimeFailedError("x")) is errors.FailedPreconditionError


def test_errors_outside_the_taxonomy_have_no_category():
    assert category_of(errors.AgentOSError("x")) is None
    assert category_of(ValueError("x")) is None
    assert category_of(KeyboardInterrupt()) is None
