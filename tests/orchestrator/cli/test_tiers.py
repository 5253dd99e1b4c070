"""`agentos kernel` and `agentos orchestrator`, each alone, as separate processes."""

import json
import os

import httpx
import trio

from tests._support import agentos_env, run_agentos

URL = r"AgentOS desktop: (?P<base>http://127\.0\.0\.1:\d+)/\?token=(?P<token>\S+)"


async def start_kernel(spawn_agentos, data_dir, *args):
    kernel = await spawn_agentos("kernel", *args, env=agentos_env(data_dir))
    await kernel.wait_for_output(r"kernel \S+ serving on", stderr=True)
    return kernel


async def health(http):
    return (await http.get("/health")).json()


async def wait_health(http, status):
    with trio.fail_after(15):
        while (body := await health(http))["status"] != status:
            await trio.sleep(0.05)
    return body


async def test_tiers_run_apart_and_the_web_tier_follows_the_kernel(spawn_agentos, data_dir):
    kernel = await start_kernel(spawn_agentos, data_dir)
    web = await spawn_agentos("orchestrator", "--port", "0", env=agentos_env(data_dir))
    base = (await web.wait_for_output(URL))["base"]
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await wait_health(http, "healthy"))["kernel"]["connected"] is True
        assert await kernel.stop() == 0
        assert (await wait_health(http, "degraded"))["kernel"]["connected"] is False
        kernel = await start_kernel(spawn_agentos, data_dir)
        await wait_health(http, "healthy")
    assert await web.stop() == 0
    assert await kernel.stop() == 0
    for process in (web, kernel):
        assert b"Traceback" not in process.stderr
    assert os.listdir(data_dir / "run") == []


async def test_a_kernel_on_a_custom_socket_is_found_through_its_record(spawn_agentos, data_dir):
    custom = data_dir / "custom.sock"
    kernel = await start_kernel(spawn_agentos, data_dir, "--socket", str(custom))
    record = json.loads((data_dir / "run" / "kernel.json").read_text())
    assert record["socket"] == str(custom)
    assert record["pid"] == kernel.pid
    reply = await run_agentos("call", "sys.ping", '{"data": "found"}', env=agentos_env(data_dir))
    assert json.loads(reply.stdout)["data"] == "found"
    assert await kernel.stop() == 0
    assert not custom.exists()
    assert os.listdir(data_dir / "run") == []


async def test_the_orchestrator_starts_before_the_kernel_and_connects_later(
    spawn_agentos, data_dir
):
    web = await spawn_agentos("orchestrator", "--port", "0", env=agentos_env(data_dir))
    base = (await web.wait_for_output(URL))["base"]
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await health(http))["status"] == "degraded"
        kernel = await start_kernel(spawn_agentos, data_dir)
        await wait_health(http, "healthy")
    assert await web.stop() == 0
    assert await kernel.stop() == 0
