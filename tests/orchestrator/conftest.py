"""Fixtures of the web tier's tests."""

import pytest

from tests.orchestrator._web import Web, make_settings, start_web


@pytest.fixture
async def web(nursery, running_kernel, data_dir):
    """The app through Quart's test client, against a kernel serving on ``data_dir``."""
    app, link = await start_web(nursery, running_kernel, make_settings(data_dir))
    async with app.test_app() as test_app:
        yield Web(test_app.test_client(), link)
