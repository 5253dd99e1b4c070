"""/services: the typed catalog, discovery, and tools run as the app's own kernel process."""

import base64
import functools
import json

import pytest
import trio

from orchestrator.services.auth import AuthStore
from orchestrator.services.storage import key_file
from tests._support import is_root
from tests.orchestrator._web import make_settings, start_web

needs_root = pytest.mark.skipif(not is_root(), reason="app volumes need root")


async def execute(web, tool_id, params=None, app_id=None):
    body = {"tool_id": tool_id, "params": params or {}}
    if app_id is not None:
        body["app_id"] = app_id
    response = await web.client.post("/services/execute", headers=web.auth(), json=body)
    return response.status_code, await response.get_json()


async def ok(web, tool_id, params=None, app_id=None):
    status, body = await execute(web, tool_id, params, app_id)
    assert status == 200, body
    assert body["success"] is True
    return body["data"]


async def launch(web, app_id):
    """A process of the app under the standard policy (its files, no container)."""
    return await web.link.call(
        "proc.spawn", {"name": app_id, "app_id": app_id, "policy": "standard"}
    )


async def test_the_catalog_lists_every_tool_with_its_schema(web):
    body = await (await web.client.get("/services", headers=web.auth())).get_json()
    tools = {t["id"]: t for s in body["services"] for t in s["tools"]}
    for tool in ("system.getLogs", "storage.clear", "filesystem.copy", "auth.getUser"):
        assert tool in tools
    key = {p["name"]: p for p in tools["storage.set"]["parameters"]}["key"]
    assert (key["type"], key["required"]) == ("string", True)
    assert tools["storage.set"]["params_schema"]["additionalProperties"] is False
    assert body["stats"]["total_tools"] == len(tools)
    data = await (await web.client.get("/services?category=data", headers=web.auth())).get_json()
    assert {s["id"] for s in data["services"]} == {"storage", "filesystem"}


async def test_discovery_ranks_services_by_the_words_asked(web):
    response = await web.client.post(
        "/services/discover", headers=web.auth(), json={"message": "log in a user with a password"}
    )
    body = await response.get_json()
    assert body["services"][0]["id"] == "auth"
    assert len(body["services"]) <= 5


async def test_bad_calls_get_clear_errors(web):
    status, body = await execute(web, "storage.nope")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await execute(web, "system.log", {"level": "loud", "extra": 1})
    assert status == 400
    assert {d["loc"] for d in body["error"]["details"]} == {
        "params.level", "params.extra", "params.message"
    }  # fmt: skip
    status, body = await execute(web, "system.time", app_id="ghost")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await execute(web, "storage.get", {"key": "k"})  # no app: no app's data
    assert (status, body["error"]["code"]) == (409, "failed_precondition")


async def test_the_desktop_acts_as_its_own_unprivileged_process(web):
    now = await ok(web, "system.time")
    assert now["unix"] > 0
    assert (await ok(web, "system.ping"))["pong"] is True
    assert (await ok(web, "system.info"))["name"]
    await ok(web, "system.log", {"level": "warning", "message": "hello"})
    entries = (await ok(web, "system.getLogs", {"level": "warning"}))["entries"]
    assert [e["message"] for e in entries] == ["hello"]
    status, body = await execute(web, "filesystem.read", {"path": "/tmp/x"})
    assert (status, body["error"]["code"]) == (403, "permission_denied")
    processes = (await web.link.call("proc.list"))["processes"]
    (desktop,) = [p for p in processes if p["name"] == "desktop"]
    assert sorted(desktop["capabilities"]) == ["system_info", "time_access"]


@needs_root
async def test_storage_keeps_an_apps_values_in_its_own_files(web):
    await launch(web, "notes")
    await launch(web, "todo")
    await ok(web, "storage.set", {"key": "../escape", "value": {"a": [1, 2]}}, app_id="notes")
    await ok(web, "storage.set", {"key": "n", "value": 3}, app_id="notes")
    got = await ok(web, "storage.get", {"key": "../escape"}, app_id="notes")
    assert got["value"] == {"a": [1, 2]}
    assert (await ok(web, "storage.list", app_id="notes"))["keys"] == ["../escape", "n"]
    listing = await web.link.call("fs.list", {"path": "/storage/apps/notes/.storage"})
    assert sorted(e["name"] for e in listing["entries"]) == sorted(
        [key_file("../escape"), key_file("n")]
    )
    status, _ = await execute(web, "storage.get", {"key": "n"}, app_id="todo")
    assert status == 404  # another app has a store of its own
    status, body = await execute(
        web, "filesystem.read", {"path": f"/storage/apps/notes/.storage/{key_file('n')}"},
        app_id="todo",
    )  # fmt: skip
    assert (status, body["error"]["code"]) == (403, "permission_denied")
    assert (await ok(web, "storage.remove", {"key": "n"}, app_id="notes"))["removed"] is True
    assert (await ok(web, "storage.clear", app_id="notes"))["removed"] == 1
    assert (await ok(web, "storage.list", app_id="notes"))["keys"] == []


@needs_root
async def test_files_are_reached_through_the_kernel_as_the_app(web):
    await launch(web, "editor")
    await ok(web, "filesystem.mkdir", {"path": "docs"}, app_id="editor")
    await ok(web, "filesystem.write", {"path": "docs/a.md", "content": "# A\n"}, app_id="editor")
    await ok(
        web, "filesystem.write", {"path": "docs/a.md", "content": "more\n", "append": True},
        app_id="editor",
    )  # fmt: skip
    read = await ok(web, "filesystem.read", {"path": "docs/a.md"}, app_id="editor")
    assert read == {"path": "/storage/apps/editor/docs/a.md", "content": "# A\nmore\n", "size": 9}
    blob = bytes(range(256))
    await ok(
        web, "filesystem.write",
        {"path": "b.bin", "content": base64.b64encode(blob).decode(), "encoding": "base64"},
        app_id="editor",
    )  # fmt: skip
    status, _ = await execute(web, "filesystem.read", {"path": "b.bin"}, app_id="editor")
    assert status == 400  # not text
    raw = await ok(web, "filesystem.read", {"path": "b.bin", "encoding": "base64"}, app_id="editor")
    assert base64.b64decode(raw["content"]) == blob
    await ok(web, "filesystem.copy", {"source": "docs/a.md", "target": "c.md"}, app_id="editor")
    await ok(web, "filesystem.move", {"source": "c.md", "target": "d.md"}, app_id="editor")
    names = [e["name"] for e in (await ok(web, "filesystem.list", {"path": "."}, app_id="editor"))[
        "entries"]]  # fmt: skip
    assert sorted(names) == ["b.bin", "d.md", "docs"]
    assert (await ok(web, "filesystem.stat", {"path": "d.md"}, app_id="editor"))["size"] == 9
    await ok(web, "filesystem.delete", {"path": "d.md"}, app_id="editor")
    assert (await ok(web, "filesystem.exists", {"path": "d.md"}, app_id="editor"))[
        "exists"
    ] is False
    await ok(web, "filesystem.rmdir", {"path": "docs", "recursive": True}, app_id="editor")
    status, body = await execute(web, "filesystem.read", {"path": "/etc/passwd"}, app_id="editor")
    assert (status, body["error"]["code"]) == (403, "permission_denied")  # beyond its grants
    exists = await web.link.call("fs.exists", {"path": "/etc/passwd"})  # and the kernel's
    assert exists["exists"] is False  # mounts are all there is: no host path behind them


@needs_root
async def test_commands_run_in_the_apps_own_sandbox(web):
    standard = (await web.link.call("policy.get", {"name": "standard"}))["policy"]
    terminal = {
        **standard, "name": "terminal",
        "capabilities": [*standard["capabilities"], "spawn_process"],
    }  # fmt: skip
    await web.link.call("policy.put", {"policy": terminal})
    sleep = {"argv": ["sleep", "60"]}
    await web.link.call(
        "proc.spawn", {"name": "term", "app_id": "term", "policy": "terminal", "command": sleep}
    )
    script = "echo hi; echo oops >&2; cat; echo made > /data/by-exec; exit 3"
    result = await ok(
        web, "proc.exec", {"command": ["sh", "-c", script], "stdin": "typed\n"}, app_id="term"
    )
    assert (result["exit_code"], result["stdout"], result["stderr"]) == (3, "hi\ntyped\n", "oops\n")
    assert not result["truncated"]
    made = await ok(web, "filesystem.read", {"path": "by-exec"}, app_id="term")
    assert made["content"] == "made\n"  # /data in its sandbox is the app's directory
    await web.link.call("proc.spawn", {"name": "plain", "app_id": "plain", "command": sleep})
    status, body = await execute(web, "proc.exec", {"command": ["true"]}, app_id="plain")
    assert (status, body["error"]["code"]) == (403, "permission_denied")  # standard: no exec


async def test_accounts_register_log_in_and_out(web):
    creds = {"username": "ada", "password": "correct horse"}
    await ok(web, "auth.register", creds)
    status, body = await execute(web, "auth.register", creds)
    assert (status, body["error"]["code"]) == (409, "already_exists")
    status, _ = await execute(web, "auth.login", {**creds, "password": "wrong password"})
    assert status == 403
    status, _ = await execute(web, "auth.login", {**creds, "username": "nobody"})
    assert status == 403
    session = await ok(web, "auth.login", creds)
    verified = await ok(web, "auth.verify", {"token": session["token"]})
    assert (verified["valid"], verified["username"]) == (True, "ada")
    assert (await ok(web, "auth.getUser", {"token": session["token"]}))["username"] == "ada"
    assert (await ok(web, "auth.logout", {"token": session["token"]}))["logged_out"] is True
    assert (await ok(web, "auth.verify", {"token": session["token"]}))["valid"] is False
    status, _ = await execute(web, "auth.getUser", {"token": session["token"]})
    assert status == 403


async def test_sessions_survive_a_restart_and_expire(tmp_path):
    clock = [1000.0]
    path = tmp_path / "auth.sqlite3"
    store = AuthStore(path, session_seconds=60, clock=lambda: clock[0])
    await store.register("app", "ada", "correct horse")
    session = await store.login("app", "ada", "correct horse")
    store.close()
    reopened = AuthStore(path, session_seconds=60, clock=lambda: clock[0])
    assert (await reopened.verify("app", session["token"]))["valid"] is True
    assert (await reopened.verify("other-app", session["token"]))["valid"] is False
    clock[0] += 61
    assert (await reopened.verify("app", session["token"]))["valid"] is False
    assert "correct horse" not in path.read_bytes().decode(errors="replace")
    assert session["token"] not in path.read_bytes().decode(errors="replace")
    reopened.close()


async def answer_json(stream):
    """One HTTP/1.1 answer: the request line back, as JSON."""
    async with stream:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            request += chunk
        line = request.split(b"\r\n", 1)[0].decode()
        body = json.dumps({"request": line}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        await stream.send_all(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)


async def test_web_requests_go_where_the_apps_policy_allows(web, nursery):
    (listener,) = await nursery.start(
        functools.partial(trio.serve_tcp, answer_json, 0, host="127.0.0.1")
    )
    port = listener.socket.getsockname()[1]
    policy = {
        "name": "fetcher", "capabilities": ["network_access"],
        "network": {"mode": "allowlist", "allow": [f"127.0.0.1/32:{port}"]},
    }  # fmt: skip
    await web.link.call("policy.put", {"policy": policy})
    await web.link.call("proc.spawn", {"name": "f", "app_id": "fetcher", "policy": "fetcher"})
    got = await ok(web, "http.get", {"url": f"http://127.0.0.1:{port}/a?b=1"}, app_id="fetcher")
    assert (got["status"], got["json"]) == (200, {"request": "GET /a?b=1 HTTP/1.1"})
    posted = await ok(
        web, "http.post", {"url": f"http://127.0.0.1:{port}/p", "json": {"x": 1}},
        app_id="fetcher",
    )  # fmt: skip
    assert posted["json"]["request"] == "POST /p HTTP/1.1"
    status, body = await execute(
        web, "http.get", {"url": f"http://127.0.0.1:{port + 1}/"}, app_id="fetcher"
    )
    assert (status, body["error"]["code"]) == (403, "permission_denied")  # not its allowlist
    status, body = await execute(web, "http.get", {"url": f"http://127.0.0.1:{port}/"})
    assert (status, body["error"]["code"]) == (403, "permission_denied")  # the desktop: no net


async def test_the_desktops_process_is_reused_by_a_restarted_web_tier(
    web, nursery, running_kernel, data_dir
):
    await ok(web, "system.time")
    app, _ = await start_web(nursery, running_kernel, make_settings(data_dir))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        body = {"tool_id": "system.time", "params": {}}
        response = await client.post("/services/execute", headers=web.auth(), json=body)
        assert response.status_code == 200
    processes = (await web.link.call("proc.list"))["processes"]
    assert [p["name"] for p in processes if p["state"] != "exited"] == ["desktop"]
