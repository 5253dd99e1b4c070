"""/sessions: the whole workspace saved atomically and restored parents first."""

import json
import os
import signal
from pathlib import Path

import pytest
import trio

from orchestrator.apps import App, AppState
from orchestrator.records import RecordDirectory
from orchestrator.sessions import Session, SessionStore, Workspace, parents_first
from tests._support import is_root

ORIGINALS = Path("/work/shared/reference/original-apps")


def blueprint(app_id):
    return {
        "app": {"id": app_id, "name": app_id.title()},
        "ui": {"components": [{"button#b": {"text": "x", "@click": "ui.set"}}]},
    }


async def call(web, method, path, body=None, status=200):
    response = await web.client.open(path, method=method, headers=web.auth(), json=body)
    data = await response.get_json()
    assert response.status_code == status, data
    return data


@pytest.mark.skipif(not is_root(), reason="app volumes need root")
async def test_a_workspace_saved_and_restored_parents_first(web):
    notes = json.loads((ORIGINALS / "productivity/notes.bp").read_text())
    top = await call(web, "POST", "/apps", {"blueprint": notes}, 201)
    child = await call(
        web, "POST", "/apps", {"blueprint": blueprint("child"), "parent_id": top["id"]}, 201
    )
    side = await call(web, "POST", "/apps", {"blueprint": blueprint("side")}, 201)
    await call(web, "POST", f"/apps/{side['id']}/minimise")
    window = {"window_id": "w", "position": {"x": 1, "y": 2}, "size": {"width": 3, "height": 4}}
    await call(web, "POST", f"/apps/{child['id']}/window", window)
    await call(web, "POST", f"/apps/{top['id']}/focus")
    saved = await call(web, "POST", "/sessions/save", {
        "name": "work", "chat_state": {"messages": [{"type": "user", "content": "hi"}]},
        "app_states": {child["id"]: {"display": "7"}},
    })  # fmt: skip
    session_id = saved["session"]["id"]
    assert saved["session"]["app_count"] == 3
    await call(web, "DELETE", f"/apps/{side['id']}")
    restored = await call(web, "POST", f"/sessions/{session_id}/restore")
    apps = {a["hash"]: a for a in restored["workspace"]["apps"]}
    assert set(apps) == {"notes", "child", "side"}
    assert apps["child"]["parent_id"] == apps["notes"]["id"]  # the new parent's id
    assert apps["child"]["component_state"] == {"display": "7"}
    assert apps["child"]["window"] == window
    assert apps["side"]["state"] == "background"
    assert restored["workspace"]["focused_app_hash"] == "notes"
    assert restored["workspace"]["chat_state"]["messages"][0]["content"] == "hi"
    listing = await call(web, "GET", "/sessions")
    assert listing["stats"]["total_sessions"] == 1
    assert listing["stats"]["last_restored"] is not None
    live = [p for p in (await web.link.call("proc.list"))["processes"] if p["state"] != "exited"]
    assert len(live) == 3  # the old ones closed, the session's started
    whole = await call(web, "GET", f"/sessions/{session_id}")
    assert len(whole["workspace"]["apps"]) == 3
    await call(web, "DELETE", f"/sessions/{session_id}")
    await call(web, "GET", f"/sessions/{session_id}", status=404)


async def test_the_default_session_is_replaced_not_multiplied(web):
    first = await call(web, "POST", "/sessions/save-default", {"name": "ignored"})
    second = await call(web, "POST", "/sessions/save-default", {})
    assert first["session"]["id"] == second["session"]["id"] == "default"
    assert second["session"]["name"] == "default"
    assert second["session"]["created_at"] == first["session"]["created_at"]
    assert [s["id"] for s in (await call(web, "GET", "/sessions"))["sessions"]] == ["default"]


def app(app_id, parent=None, at=0.0):
    return App(
        id=app_id, hash=app_id, title=app_id, state=AppState.ACTIVE, parent_id=parent,
        created_at=at, metadata={}, services=[], sandbox_pid=None, policy="standard", ui_spec={},
    )  # fmt: skip


def test_parents_come_before_their_children_whatever_the_order():
    apps = [app("c", "b", 1), app("b", "a", 2), app("a", None, 3), app("o", "gone", 0)]
    order = [a.id for a in parents_first(apps)]
    assert order.index("a") < order.index("b") < order.index("c")
    assert "o" in order


async def test_a_save_killed_midway_leaves_every_session_whole(tmp_path):
    store = SessionStore(tmp_path / "sessions")
    kept = await store.save(Workspace(apps=[app(f"a{n}") for n in range(200)]), name="kept")
    files = RecordDirectory(store.directory, Session, suffix=".session", kind="session")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child rewrites the session until it is killed
        try:
            for n in range(100_000):
                renamed = kept.model_copy(update={"name": f"v{n}"})
                files.write_blocking(kept.id, renamed)
        finally:
            os._exit(0)
    await trio.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    _, status = await trio.to_thread.run_sync(os.waitpid, pid, 0)
    assert os.WIFSIGNALED(status)  # killed while it was still writing
    survivor = await SessionStore(tmp_path / "sessions").get(kept.id)
    assert survivor.workspace == kept.workspace  # one whole version or another, never half
    assert [s.id for s in await SessionStore(tmp_path / "sessions").all()] == [kept.id]
