"""/stream: the WebSocket's token and origin checks, tool calls, kernel events, process
output, and the bound on what waits for a slow client."""

import json

import pytest
import trio
from quart.testing.connections import WebsocketDisconnectError

from orchestrator.routes.stream import OUTBOX_SIZE, _Connection
from tests._support import is_root
from tests.orchestrator._web import USER_TOKEN


async def receive(ws, kind=None, timeout=10):
    """The next message (of type ``kind``, skipping others)."""
    with trio.fail_after(timeout):
        while True:
            message = json.loads(await ws.receive())
            if kind is None or message["type"] == kind:
                return message


def connect(web, token=USER_TOKEN, **headers):
    return web.client.websocket(f"/stream?token={token}", headers=headers)


async def close_code(connection):
    """The code the server closes ``connection`` with before saying anything."""
    with pytest.RaisesGroup(WebsocketDisconnectError, flatten_subgroups=True) as closed:
        async with connection as ws:
            await ws.receive()
    return closed.value.exceptions[0].args[0]


async def test_a_token_and_a_known_origin_are_required(web):
    assert await close_code(web.client.websocket("/stream")) == 1008
    assert await close_code(connect(web, token="x" * 32)) == 1008
    assert await close_code(connect(web, Origin="https://evil.example")) == 1008
    async with connect(web, Origin="http://localhost") as ws:  # the server's own host
        assert (await receive(ws))["type"] == "system"
    headers = {"Authorization": f"Bearer {USER_TOKEN}"}
    async with web.client.websocket("/stream", headers=headers) as ws:
        assert (await receive(ws))["type"] == "system"


async def test_ping_tool_calls_and_errors(web):
    async with connect(web) as ws:
        hello = await receive(ws)
        assert (hello["type"], hello["message"]) == ("system", "connected")
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws))["type"] == "pong"
        await ws.send(json.dumps({"type": "tool_call", "id": 7, "tool_id": "system.time"}))
        result = await receive(ws, "tool_result")
        assert (result["id"], result["success"]) == (7, True)
        assert result["data"]["unix"] > 0
        await ws.send(json.dumps({"type": "tool_call", "id": "b", "tool_id": "storage.nope"}))
        failed = await receive(ws, "tool_result")
        assert (failed["id"], failed["success"], failed["error"]["code"]) == (
            "b", False, "not_found"
        )  # fmt: skip
        await ws.send(
            json.dumps({"type": "tool_call", "id": 3, "tool_id": "system.log", "params": {}})
        )
        invalid = await receive(ws, "tool_result")
        assert invalid["error"]["details"][0]["loc"] == "params.message"
        await ws.send("{not json")
        assert "not JSON" in (await receive(ws, "error"))["message"]
        await ws.send(json.dumps({"type": "chant"}))
        assert "unknown message type" in (await receive(ws, "error"))["message"]


async def test_kernel_events_are_forwarded_once_subscribed(web):
    async with connect(web) as ws:
        await ws.send(json.dumps({"type": "subscribe", "topic": "events"}))
        await receive(ws, "subscribed")
        info = await web.link.call("proc.spawn", {"name": "watched"})
        while True:
            event = await receive(ws, "event")
            if event["kind"] == "process.spawned" and event["pid"] == info["pid"]:
                break
        await ws.send(json.dumps({"type": "unsubscribe", "topic": "events"}))
        await receive(ws, "unsubscribed")


@pytest.mark.skipif(not is_root(), reason="containers need root")
async def test_a_processs_output_streams_to_the_desktop(web):
    script = "echo first; sleep 0.3; echo second >&2; sleep 30"
    info = await web.link.call(
        "proc.spawn", {"name": "talker", "command": {"argv": ["sh", "-c", script]}}
    )
    try:
        async with connect(web) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topic": "output", "pid": info["pid"]}))
            first = await receive(ws, "output")
            second = await receive(ws, "output")
            assert (first["stream"], first["data"]) == ("stdout", "first\n")
            assert (second["stream"], second["data"]) == ("stderr", "second\n")
            await ws.send(json.dumps({"type": "subscribe", "topic": "output", "pid": 99999}))
            error = await receive(ws, "error")
            assert (error["code"], error["pid"]) == ("not_found", 99999)
    finally:
        await web.link.call("proc.kill", {"pid": info["pid"]})


async def test_a_client_that_does_not_read_is_cut_off_not_queued_for(web):
    async with trio.open_nursery() as nursery:
        connection = _Connection(nursery, web.link, None, None)  # nothing pumps its outbox
        for n in range(OUTBOX_SIZE):
            connection.send({"type": "pong", "n": n})
        assert not connection.too_slow
        connection.send({"type": "pong", "n": OUTBOX_SIZE})
        assert connection.too_slow
        assert nursery.cancel_scope.cancel_called
