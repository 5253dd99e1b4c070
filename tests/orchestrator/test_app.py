"""The web app against a real kernel on a real socket, through Quart's test client."""

import pytest
import trio

from kernel.abi import CATALOG
from tests.orchestrator._web import ADMIN_TOKEN, USER_TOKEN, make_settings, start_web


async def wait_for_health(web, status):
    with trio.fail_after(10):
        while True:
            body = await (await web.client.get("/health")).get_json()
            if body["status"] == status:
                return body
            await trio.sleep(0.02)


async def test_root_answers_api_clients_with_status_json(web):
    response = await web.client.get("/", headers={"Accept": "*/*"})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "online"
    assert body["service"] == "AgentOS"
    assert body["version"]


async def test_root_answers_browsers_with_a_page_even_before_the_desktop_is_built(
    nursery, running_kernel, data_dir
):
    settings = make_settings(data_dir, frontend_dir=data_dir / "no-build-here")
    app, _ = await start_web(nursery, running_kernel, settings)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get(
            "/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        )
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        page = await response.get_data(as_text=True)
        assert "desktop has not been built" in page


async def test_root_serves_the_built_desktop_and_its_assets_without_a_token(
    nursery, running_kernel, data_dir
):
    dist = data_dir / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>desk</title>")
    (dist / "assets" / "app.js").write_text("console.log('desktop')")
    app, _ = await start_web(nursery, running_kernel, make_settings(data_dir, frontend_dir=dist))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        page = await client.get("/", headers={"Accept": "text/html"})
        assert await page.get_data(as_text=True) == "<!doctype html><title>desk</title>"
        asset = await client.get("/assets/app.js")
        assert asset.status_code == 200
        assert "desktop" in await asset.get_data(as_text=True)


async def test_health_reports_the_kernel_truthfully(web, running_kernel):
    body = await wait_for_health(web, "healthy")
    assert body["kernel"] == {"connected": True}
    await running_kernel.stop()
    body = await wait_for_health(web, "degraded")
    assert body["kernel"] == {"connected": False}
    await running_kernel.start()
    body = await wait_for_health(web, "healthy")
    assert body["kernel"] == {"connected": True}


async def test_health_needs_no_token(web):
    assert (await web.client.get("/health")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer " + "x" * 32}, "a valid token is required"),
        ({"Authorization": f"Basic {USER_TOKEN}"}, "missing bearer token"),
        ({"Authorization": "Bearer"}, "missing bearer token"),
    ],
)
async def test_routes_need_a_valid_bearer_token(web, headers, reason):
    response = await web.client.get("/kernel/info", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    body = await response.get_json()
    assert body["error"]["code"] == "unauthorized"
    assert reason in body["error"]["message"]


@pytest.mark.parametrize("token", [USER_TOKEN, ADMIN_TOKEN])
async def test_kernel_info_with_a_token(web, token):
    response = await web.client.get("/kernel/info", headers=web.auth(token))
    assert response.status_code == 200
    info = await response.get_json()
    assert info["name"] == "AgentOS"
    assert info["calls"] >= 7


async def test_kernel_calls_lists_the_catalog_and_validates_its_query(web):
    response = await web.client.get("/kernel/calls?category=proc", headers=web.auth())
    calls = (await response.get_json())["calls"]
    expected = {spec.name for spec in CATALOG if spec.category == "proc"}
    assert {c["name"] for c in calls} == expected
    assert {"proc.spawn", "proc.wait", "proc.exec", "proc.kill"} <= expected
    bad = await web.client.get("/kernel/calls?category=No!", headers=web.auth())
    assert bad.status_code == 400
    error = (await bad.get_json())["error"]
    assert error["code"] == "invalid_argument"
    assert [d["loc"] for d in error["details"]] == ["category"]


async def test_kernel_routes_say_when_the_kernel_is_down(web, running_kernel):
    await running_kernel.stop()
    await wait_for_health(web, "degraded")
    response = await web.client.get("/kernel/info", headers=web.auth())
    assert response.status_code == 503
    error = (await response.get_json())["error"]
    assert error["code"] == "unavailable"
    assert "not connected" in error["message"]


async def test_unknown_routes_and_methods_are_json_errors(web):
    missing = await web.client.get("/no/such/route")
    assert missing.status_code == 404
    assert (await missing.get_json())["error"]["code"] == "not_found"
    wrong_method = await web.client.post("/health")
    assert wrong_method.status_code == 405
    assert (await wrong_method.get_json())["error"]["code"] == "method_not_allowed"


async def test_openapi_document_and_docs_describe_the_routes_behind_the_token(web):
    document = await (await web.client.get("/openapi.json")).get_json()  # public, like /docs
    assert {"/health", "/kernel/info", "/kernel/calls", "/admin/policies"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    docs = await web.client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in (await docs.get_data()).decode()
    assert (await web.client.get("/kernel/info")).status_code == 401  # the routes are not
