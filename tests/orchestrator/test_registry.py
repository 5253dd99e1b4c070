"""/registry: packages saved from running apps, listed from disk, launched, seeded."""

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.blueprint import parse_blueprint
from orchestrator.registry import Registry
from tests._support import is_root
from tests.orchestrator._web import make_settings, start_web

ORIGINALS = Path("/work/shared/reference/original-apps")
NOTES = json.loads((ORIGINALS / "productivity/notes.bp").read_text())


@pytest.mark.skipif(not is_root(), reason="app volumes need root")
async def test_a_running_app_saved_listed_launched_and_deleted(web):
    launched = await (
        await web.client.post("/apps", headers=web.auth(), json={"blueprint": NOTES})
    ).get_json()
    save = {"app_id": launched["id"], "icon": "N", "category": "productivity", "tags": ["a"]}
    saved = await (
        await web.client.post("/registry/save", headers=web.auth(), json=save)
    ).get_json()
    package_id = saved["package_id"]
    assert package_id.startswith("notes-")
    listing = await (await web.client.get("/registry/apps", headers=web.auth())).get_json()
    assert [a["id"] for a in listing["apps"]] == [package_id]
    assert "blueprint" not in listing["apps"][0]
    assert listing["stats"]["categories"] == {"productivity": 1}
    package = await (
        await web.client.get(f"/registry/apps/{package_id}", headers=web.auth())
    ).get_json()
    assert (package["icon"], package["tags"], package["blueprint"]["app"]["id"]) == (
        "N",
        ["a"],
        "notes",
    )
    again = await (
        await web.client.post(f"/registry/apps/{package_id}/launch", headers=web.auth())
    ).get_json()
    assert again["app_id"] != launched["id"]
    assert again["title"] == "Notes"
    running = await (await web.client.get("/apps", headers=web.auth())).get_json()
    assert len(running["apps"]) == 2
    deleted = await web.client.delete(f"/registry/apps/{package_id}", headers=web.auth())
    assert (await deleted.get_json())["success"] is True
    assert (
        await web.client.get(f"/registry/apps/{package_id}", headers=web.auth())
    ).status_code == 404


@pytest.mark.parametrize(
    "save",
    [
        {"app_id": "x", "icon": "far too long an icon"},
        {"app_id": "x", "tags": ["t"] * 21},
        {"app_id": "x", "tags": ["t" * 33]},
        {"app_id": "bad id"},
    ],
)
async def test_bad_saves_are_refused(web, save):
    response = await web.client.post("/registry/save", headers=web.auth(), json=save)
    assert response.status_code == 400


async def test_unknown_packages_and_apps(web):
    assert (await web.client.get("/registry/apps/nope-1", headers=web.auth())).status_code == 404
    assert (await web.client.get("/registry/apps/..%2Fx", headers=web.auth())).status_code == 404
    missing = await web.client.post("/registry/save", headers=web.auth(), json={"app_id": "gone"})
    assert missing.status_code == 404


async def test_packages_are_read_from_disk_after_a_restart(tmp_path):
    blueprint = parse_blueprint(NOTES)
    first = Registry(tmp_path / "registry")
    saved = await first.save(blueprint, package_id="notes")
    reopened = Registry(tmp_path / "registry")
    assert [p.id for p in await reopened.all()] == ["notes"]
    assert (await reopened.get("notes")).created_at == saved.created_at
    resaved = await reopened.save(blueprint, package_id="notes", tags=["x"])
    assert (resaved.created_at, resaved.tags) == (saved.created_at, ["x"])  # its birth is kept
    (tmp_path / "registry" / "broken.aiapp").write_text("{not json")
    assert [p.id for p in await reopened.all()] == ["notes"]  # a broken file is skipped


async def test_prebuilt_apps_are_seeded_once_at_start(nursery, running_kernel, data_dir, tmp_path):
    apps = tmp_path / "apps"
    shutil.copytree(ORIGINALS, apps)
    (apps / "broken.bp").write_text('{"app": {"id": "broken"}}')
    settings = make_settings(data_dir, apps_dir=apps)
    app, _ = await start_web(nursery, running_kernel, settings)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        headers = {"Authorization": f"Bearer {settings.token.get_secret_value()}"}
        listing = await (await client.get("/registry/apps", headers=headers)).get_json()
    ids = sorted(a["id"] for a in listing["apps"])
    assert ids == ["browser", "file-explorer", "hub", "notes", "system-analysis", "task-manager"]
    registry = Registry(settings.state_dir / "registry")
    assert await registry.seed(apps, server_tools=["filesystem.list", "system.info"]) == []
