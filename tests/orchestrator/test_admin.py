"""/admin/*: policies kept by the kernel, running sandboxes, the audit log; admin token only."""

import json

import pytest

from tests._support import is_root
from tests.orchestrator._web import ADMIN_TOKEN, USER_TOKEN

SMALL = {"name": "small", "description": "a little", "limits": {"memory": "48M", "pids": 9}}


def admin(web):
    return web.auth(ADMIN_TOKEN)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/policies"),
        ("GET", "/admin/policies/standard"),
        ("POST", "/admin/policies"),
        ("PUT", "/admin/policies/small"),
        ("DELETE", "/admin/policies/small"),
        ("GET", "/admin/sandboxes"),
        ("DELETE", "/admin/sandboxes/sb-000000000000"),
        ("GET", "/admin/audit"),
    ],
)
async def test_the_user_token_does_not_open_admin_routes(web, method, path):
    response = await web.client.open(path, method=method, headers=web.auth(USER_TOKEN), json=SMALL)
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "forbidden"
    response = await web.client.open(path, method=method, json=SMALL)
    assert response.status_code == 401


async def test_policies_are_created_listed_replaced_and_deleted(web):
    created = await web.client.post("/admin/policies", headers=admin(web), json=SMALL)
    assert created.status_code == 201
    body = await created.get_json()
    assert (body["name"], body["builtin"], body["policy"]["limits"]["memory"]) == (
        "small", False, 48 << 20
    )  # fmt: skip
    again = await web.client.post("/admin/policies", headers=admin(web), json=SMALL)
    assert again.status_code == 409
    listing = await (await web.client.get("/admin/policies", headers=admin(web))).get_json()
    assert [p["name"] for p in listing["policies"]] == ["minimal", "standard", "network", "small"]
    bigger = {**SMALL, "limits": {"memory": "96M"}}
    replaced = await web.client.put("/admin/policies/small", headers=admin(web), json=bigger)
    assert replaced.status_code == 200
    one = await (await web.client.get("/admin/policies/small", headers=admin(web))).get_json()
    assert one["policy"]["limits"]["memory"] == 96 << 20
    fresh = await web.client.put(
        "/admin/policies/other", headers=admin(web), json={**SMALL, "name": "other"}
    )
    assert fresh.status_code == 201
    deleted = await web.client.delete("/admin/policies/small", headers=admin(web))
    assert deleted.status_code == 200
    gone = await web.client.get("/admin/policies/small", headers=admin(web))
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("POST", "/admin/policies", {**SMALL, "limits": {"memory": "lots"}}, 400, "limits.memory"),
        ("POST", "/admin/policies", {**SMALL, "extra": 1}, 400, "extra"),
        ("POST", "/admin/policies", {**SMALL, "name": "standard"}, 403, "built-in"),
        ("PUT", "/admin/policies/small", {**SMALL, "name": "else"}, 400, "the path"),
        ("PUT", "/admin/policies/Bad!", SMALL, 400, "policy name"),
        ("DELETE", "/admin/policies/standard", None, 403, "built-in"),
        ("DELETE", "/admin/policies/absent", None, 404, "absent"),
        ("DELETE", "/admin/sandboxes/bad%20id!", None, 400, "sandbox id"),
    ],
)
async def test_bad_requests_get_clear_errors(web, method, path, body, status, needle):
    response = await web.client.open(path, method=method, headers=admin(web), json=body)
    assert response.status_code == status
    error = (await response.get_json())["error"]
    assert needle in error["message"] + json.dumps(error.get("details", []))


async def test_every_change_is_audited_done_or_refused(web):
    await web.client.post("/admin/policies", headers=admin(web), json=SMALL)
    await web.client.post("/admin/policies", headers=admin(web), json=SMALL)  # 409
    await web.client.delete("/admin/policies/small", headers=admin(web))
    await web.client.get("/admin/policies", headers=admin(web))  # reads are not audited
    log = await (await web.client.get("/admin/audit", headers=admin(web))).get_json()
    entries = [(e["action"], e["target"], e["outcome"]) for e in log["entries"]]
    assert entries == [
        ("policy.create", "small", "ok"),
        ("policy.create", "small", "already_exists"),
        ("policy.delete", "small", "ok"),
    ]
    assert log["entries"][0]["details"]["policy"]["limits"]["pids"] == 9
    latest = await (await web.client.get("/admin/audit?limit=1", headers=admin(web))).get_json()
    assert [e["action"] for e in latest["entries"]] == ["policy.delete"]


@pytest.mark.skipif(not is_root(), reason="containers need root")
async def test_sandboxes_are_listed_with_their_counters_and_killed(web):
    await web.client.post("/admin/policies", headers=admin(web), json=SMALL)
    info = await web.link.call(
        "proc.spawn", {"name": "app", "policy": "small", "command": {"argv": ["sleep", "60"]}}
    )
    busy = await web.client.delete("/admin/policies/small", headers=admin(web))
    assert busy.status_code == 409  # a running process uses it
    listing = await (await web.client.get("/admin/sandboxes", headers=admin(web))).get_json()
    (entry,) = listing["sandboxes"]
    assert (entry["pid"], entry["policy"]) == (info["pid"], "small")
    assert entry["stats"]["memory_limit_bytes"] == 48 << 20
    assert entry["stats"]["pids_current"] >= 1
    sandbox = entry["container"]["id"]
    killed = await web.client.delete(f"/admin/sandboxes/{sandbox}", headers=admin(web))
    assert killed.status_code == 200
    assert (await killed.get_json())["exit_reason"] == "killed"
    again = await web.client.delete(f"/admin/sandboxes/{sandbox}", headers=admin(web))
    assert again.status_code == 404
    listing = await (await web.client.get("/admin/sandboxes", headers=admin(web))).get_json()
    assert listing["sandboxes"] == []
    assert (await web.client.delete("/admin/policies/small", headers=admin(web))).status_code == 200
