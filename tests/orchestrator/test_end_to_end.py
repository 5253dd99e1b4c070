"""End to end on a live server (Hypercorn, a real kernel, runc): launch an app, use its
storage and files, save it and the session, close it, restart the web tier, and find
everything where it was."""

import json
from pathlib import Path

import httpx
import pytest
import trio
from pydantic import SecretStr

from orchestrator.config import OrchestratorSettings
from orchestrator.service import OrchestratorService
from tests._support import is_root
from tests.orchestrator._web import USER_TOKEN

pytestmark = pytest.mark.skipif(not is_root(), reason="app volumes need root")

NOTES = json.loads(Path("/work/shared/reference/original-apps/productivity/notes.bp").read_text())
AUTH = {"Authorization": f"Bearer {USER_TOKEN}"}


async def serve(nursery, data_dir):
    settings = OrchestratorSettings(data_dir=data_dir, port=0, token=SecretStr(USER_TOKEN))
    service = OrchestratorService(settings)
    handle = await nursery.start(service.run)
    with trio.fail_after(10):
        await handle.link.wait_connected()
    return service, handle.url


async def ok(client, method, path, body=None, status=200):
    response = await client.request(method, path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    return response.json()


async def tool(client, tool_id, params, app_id="notes"):
    body = {"tool_id": tool_id, "params": params, "app_id": app_id}
    return (await ok(client, "POST", "/services/execute", body))["data"]


async def test_an_app_its_data_and_the_session_outlive_the_web_tier(
    nursery, running_kernel, data_dir
):
    service, url = await serve(nursery, data_dir)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        app = await ok(client, "POST", "/apps", {"blueprint": NOTES}, 201)
        await tool(client, "storage.set", {"key": "draft", "value": {"title": "Plan"}})
        await tool(client, "filesystem.write", {"path": "notes/plan.md", "content": "# Plan\n"})
        package = await ok(client, "POST", "/registry/save", {"app_id": app["id"]})
        session = await ok(client, "POST", "/sessions/save", {"name": "work"})
        await ok(client, "DELETE", f"/apps/{app['id']}")
        assert (await ok(client, "GET", "/apps"))["apps"] == []
    service.shutdown()
    host, port = url.removeprefix("http://").split(":")
    with trio.fail_after(15):
        while True:  # the old server has let go of its port
            try:
                stream = await trio.open_tcp_stream(host, int(port))
            except OSError:
                break
            await stream.aclose()
            await trio.sleep(0.05)

    service, url = await serve(nursery, data_dir)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        packages = (await ok(client, "GET", "/registry/apps"))["apps"]
        assert [p["id"] for p in packages] == [package["package_id"]]
        sessions = (await ok(client, "GET", "/sessions"))["sessions"]
        assert [s["id"] for s in sessions] == [session["session"]["id"]]
        restored = await ok(client, "POST", f"/sessions/{session['session']['id']}/restore")
        assert [a["hash"] for a in restored["workspace"]["apps"]] == ["notes"]
        draft = await tool(client, "storage.get", {"key": "draft"})
        assert draft["value"] == {"title": "Plan"}
        plan = await tool(client, "filesystem.read", {"path": "notes/plan.md"})
        assert plan["content"] == "# Plan\n"
        launched = await ok(client, "POST", f"/registry/apps/{package['package_id']}/launch")
        assert launched["title"] == "Notes"
    service.shutdown()
