"""Schemathesis against a live server: requests generated from the OpenAPI document,
valid and not, never get a 5xx."""

import schemathesis
import trio
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from orchestrator.config import OrchestratorSettings
from orchestrator.service import OrchestratorService
from tests.orchestrator._web import ADMIN_TOKEN, USER_TOKEN

EXAMPLES = 25


def fuzz(base_url: str) -> dict[str, int]:
    """Each operation's generated requests, run and checked; the count per operation."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=headers)
    ran: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        ran[label] = 0
        checked(operation, base_url, headers, ran, label)()
    return ran


def checked(operation, base_url, headers, ran, label):
    """A hypothesis test sending ``operation``'s generated requests."""

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        case.validate_response(response, checks=(not_a_server_error,))
        ran[label] += 1

    return run


async def test_no_generated_request_gets_a_server_error(nursery, running_kernel, data_dir):
    web = OrchestratorSettings(
        data_dir=data_dir, port=0, token=SecretStr(USER_TOKEN),
        admin_token=SecretStr(ADMIN_TOKEN), rate_limit=0,
    )  # fmt: skip
    service = OrchestratorService(web)
    handle = await nursery.start(service.run)
    with trio.fail_after(10):
        await handle.link.wait_connected()
    ran = await trio.to_thread.run_sync(fuzz, handle.url)
    service.shutdown()
    assert len(ran) >= 15
    assert all(count > 0 for count in ran.values()), ran
