"""/metrics (the web tier's and the kernel's, text and JSON) and the scheduler routes."""

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests._support import is_root


def samples(text, name):
    """The family ``name``'s values in Prometheus text, as (labels, value); a counter's
    totals only (not its ``_created`` times)."""
    for family in text_string_to_metric_families(text):
        if family.name == name:
            wanted = f"{name}_total" if family.type == "counter" else name
            return [(s.labels, s.value) for s in family.samples if s.name == wanted]
    return []


async def test_metrics_count_requests_by_route_and_carry_the_kernels(web):
    for _ in range(3):
        assert (await web.client.get("/health")).status_code == 200
    await web.client.get("/admin/policies/none", headers=web.auth())  # 403: the user's token
    response = await web.client.get("/metrics", headers=web.auth())
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = (await response.get_data()).decode()
    requests = {
        (labels["route"], labels["status"]): value
        for labels, value in samples(text, "agentos_http_requests")
    }
    assert requests[("/health", "200")] == 3
    assert requests[("/admin/policies/<name>", "403")] == 1
    assert samples(text, "agentos_kernel_up") == [({}, 1.0)]
    assert any(labels["call"] == "sys.ping" for labels, _ in samples(text, "agentos_syscalls"))
    assert (await web.client.get("/metrics")).status_code == 401


async def test_metrics_as_json_and_without_a_kernel(web, running_kernel):
    body = await (await web.client.get("/metrics/json", headers=web.auth())).get_json()
    families = body["families"]
    assert families["agentos_kernel_up"]["samples"][0]["value"] == 1
    assert families["agentos_syscalls"]["type"] == "counter"
    await running_kernel.stop()
    with trio.fail_after(10):
        while web.link.connected:
            await trio.sleep(0.02)
    body = await (await web.client.get("/metrics/json", headers=web.auth())).get_json()
    assert body["families"]["agentos_kernel_up"]["samples"][0]["value"] == 0
    assert "agentos_syscalls" not in body["families"]
    assert "agentos_http_requests" in body["families"]


async def test_the_scheduler_policy_is_set_and_read(web):
    response = await web.client.put(
        "/kernel/scheduler/policy", headers=web.auth(), json={"policy": "fair"}
    )
    assert response.status_code == 200
    assert (await response.get_json())["policy"] == "fair"
    stats = await (await web.client.get("/kernel/scheduler/stats", headers=web.auth())).get_json()
    assert (stats["policy"], stats["processes"]) == ("fair", [])
    bad = await web.client.put(
        "/kernel/scheduler/policy", headers=web.auth(), json={"policy": "lottery"}
    )
    assert bad.status_code == 400
    nobody = await web.client.post("/kernel/schedule-next", headers=web.auth())
    assert (await nobody.get_json())["pid"] is None


@pytest.mark.skipif(not is_root(), reason="containers need root")
async def test_schedule_next_passes_the_turn_to_a_running_container(web):
    info = await web.link.call("proc.spawn", {"name": "app", "command": {"argv": ["sleep", "60"]}})
    try:
        turn = await (await web.client.post("/kernel/schedule-next", headers=web.auth())).get_json()
        assert turn["pid"] == info["pid"]
        stats = await (
            await web.client.get("/kernel/scheduler/stats", headers=web.auth())
        ).get_json()
        (entry,) = stats["processes"]
        assert (entry["pid"], entry["turn"], entry["weight"]) == (info["pid"], True, 400)
    finally:
        await web.link.call("proc.kill", {"pid": info["pid"]})
