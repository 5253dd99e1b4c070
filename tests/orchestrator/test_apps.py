"""/apps: apps run as kernel processes under the policy their Blueprints ask for."""

import json
from pathlib import Path

import pytest
import trio

from tests._support import is_root
from tests.orchestrator._web import Web, make_settings, start_web

pytestmark = pytest.mark.skipif(not is_root(), reason="app volumes and containers need root")

ORIGINALS = Path("/work/shared/reference/original-apps")


def simple(app_id="counter", **extra):
    return {
        "app": {"id": app_id, "name": app_id.title(), **extra.pop("app", {})},
        "ui": {
            "title": app_id.title(),
            "components": [{"button#inc": {"text": "+1", "@click": "ui.set"}}],
        },
        **extra,
    }  # fmt: skip


async def launch(web, blueprint, status=201, **extra):
    response = await web.client.post(
        "/apps", headers=web.auth(), json={"blueprint": blueprint, **extra}
    )
    body = await response.get_json()
    assert response.status_code == status, body
    return body


async def live_processes(web):
    listing = await web.link.call("proc.list")
    return {p["pid"]: p for p in listing["processes"] if p["state"] != "exited"}


async def test_an_original_app_launches_unchanged_as_its_own_process(web):
    notes = json.loads((ORIGINALS / "productivity/notes.bp").read_text())
    app = await launch(web, notes)
    assert (app["hash"], app["state"], app["policy"]) == ("notes", "active", "standard")
    process = (await live_processes(web))[app["sandbox_pid"]]
    assert (process["app_id"], process["policy"]) == ("notes", "standard")
    assert "read_file:/storage/apps/notes" in process["capabilities"]
    listing = await (await web.client.get("/apps", headers=web.auth())).get_json()
    assert [a["id"] for a in listing["apps"]] == [app["id"]]
    assert listing["stats"]["focused_app_hash"] == "notes"
    stored = await web.client.post(
        "/services/execute", headers=web.auth(),
        json={"tool_id": "storage.set", "params": {"key": "k", "value": 1}, "app_id": "notes"},
    )  # fmt: skip
    assert stored.status_code == 200  # its tools act as its process


async def test_a_policy_wider_than_allowed_is_refused(web):
    body = await launch(web, simple(app={"permissions": ["NETWORK"]}), status=403)
    assert "network" in body["error"]["message"]
    bad = await launch(web, simple(ui={"components": [{"type": "carousel"}]}), status=400)
    assert bad["error"]["details"][0]["loc"] == "ui.components[0].type"
    assert (await web.link.call("proc.list"))["processes"] == []


async def test_closing_an_app_closes_its_children_and_their_processes(web):
    parent = await launch(web, simple("parent"))
    child = await launch(web, simple("child"), parent_id=parent["id"])
    grandchild = await launch(web, simple("grand"), parent_id=child["id"])
    assert len(await live_processes(web)) == 3
    closed = await web.client.delete(f"/apps/{parent['id']}", headers=web.auth())
    body = await closed.get_json()
    assert body["closed"] == [grandchild["id"], child["id"], parent["id"]]
    assert await live_processes(web) == {}
    assert (await (await web.client.get("/apps", headers=web.auth())).get_json())["apps"] == []
    gone = await web.client.delete(f"/apps/{parent['id']}", headers=web.auth())
    assert gone.status_code == 404


async def test_window_and_component_state_are_kept(web):
    app = await launch(web, simple())
    window = {
        "window_id": "w1",
        "position": {"x": 10, "y": 20},
        "size": {"width": 400, "height": 300},
    }
    placed = await web.client.post(f"/apps/{app['id']}/window", headers=web.auth(), json=window)
    assert (await placed.get_json())["success"] is True
    state = {"display": "42", "items": [1, 2]}
    put = await web.client.put(
        f"/apps/{app['id']}/state", headers=web.auth(), json={"state": state}
    )
    assert put.status_code == 200
    got = await (await web.client.get(f"/apps/{app['id']}/state", headers=web.auth())).get_json()
    assert got == {"state": state}
    listed = (await (await web.client.get("/apps", headers=web.auth())).get_json())["apps"][0]
    assert listed["window"] == window
    assert (await web.client.get("/apps/nope/state", headers=web.auth())).status_code == 404
    assert (await web.client.post("/apps/bad id!/focus", headers=web.auth())).status_code == 400


async def test_a_process_app_is_throttled_in_the_background_and_boosted_in_front(web):
    first = await launch(web, simple("worker", process={"command": ["sleep", "60"]}))
    pid = first["sandbox_pid"]
    minimised = await (
        await web.client.post(f"/apps/{first['id']}/minimise", headers=web.auth())
    ).get_json()
    assert minimised["state"] == "background"
    stats = {e["pid"]: e for e in (await web.link.call("sched.stats"))["processes"]}
    assert (stats[pid]["background"], stats[pid]["cpu_max"]) == (True, 0.1)
    await web.client.post(f"/apps/{first['id']}/focus", headers=web.auth())
    stats = {e["pid"]: e for e in (await web.link.call("sched.stats"))["processes"]}
    assert (stats[pid]["background"], stats[pid]["focused"]) == (False, True)
    listing = await (await web.client.get("/apps", headers=web.auth())).get_json()
    assert listing["apps"][0]["state"] == "active"
    await web.client.delete(f"/apps/{first['id']}", headers=web.auth())
    assert await live_processes(web) == {}


async def test_an_app_whose_process_ends_is_destroyed(web):
    app = await launch(web, simple("brief", process={"command": ["sleep", "0.3"]}))
    with trio.fail_after(15):
        while True:
            listing = await (await web.client.get("/apps", headers=web.auth())).get_json()
            if not listing["apps"]:
                break
            await trio.sleep(0.05)
    gone = await web.client.post(f"/apps/{app['id']}/focus", headers=web.auth())
    assert gone.status_code == 404


async def test_minimised_apps_may_be_frozen_by_policy(nursery, running_kernel, data_dir):
    app, link = await start_web(
        nursery, running_kernel, make_settings(data_dir, freeze_background=True)
    )
    async with app.test_app() as test_app:
        web = Web(test_app.test_client(), link)
        worker = await launch(web, simple("frozen", process={"command": ["sleep", "60"]}))
        minimised = await web.client.post(f"/apps/{worker['id']}/minimise", headers=web.auth())
        assert (await minimised.get_json())["state"] == "suspended"
        state = await link.call("proc.state", {"pid": worker["sandbox_pid"]})
        assert state["state"] == "suspended"  # the kernel froze its container
        await web.client.post(f"/apps/{worker['id']}/focus", headers=web.auth())
        state = await link.call("proc.state", {"pid": worker["sandbox_pid"]})
        assert state["state"] == "running"
        await web.client.delete(f"/apps/{worker['id']}", headers=web.auth())
