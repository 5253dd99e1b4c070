"""HTTP and WebSocket throughput and latency of the web tier, beside a bare Hypercorn app.

Two server processes: `agentos up` (kernel and web tier, as users run it) and, as the
floor, a bare ASGI app served by the same Hypercorn trio worker that answers a fixed JSON
body and echoes WebSocket messages. This script is the client: --clients connections,
each sending requests one after another for --seconds per row, then the rate (req/s) and
the latency (p50, p99) of all of them.

Rows: GET /health (no kernel call), GET /apps and POST /services/execute of system.time
(a tool run as the desktop's kernel process) against the bare app's GET; a WebSocket
tool_call round trip against the bare app's WebSocket echo. (A registry launch joins when
the registry exists.)

Usage: python -P bench/http.py [--seconds S] [--clients N] [--json]
(-P: the script is named after the stdlib module it must not shadow.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

TOKEN = "bench-" + "t" * 32
READY_SECONDS = 60.0

BARE = r"""
import json, sys, trio
from hypercorn.config import Config
from hypercorn.trio import serve

BODY = json.dumps({"status": "ok"}).encode()

async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": BODY})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": message.get("text")})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})

config = Config()
config.bind = [f"127.0.0.1:{sys.argv[1]}"]
trio.run(serve, app, config)
"""


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def servers(state: Path) -> Iterator[tuple[str, str]]:
    """Run `agentos up` and the bare app; their base URLs."""
    agentos_port, bare_port = free_port(), free_port()
    env = {
        **os.environ, "AGENTOS_TOKEN": TOKEN, "AGENTOS_ADMIN_TOKEN": TOKEN + "a",
        "AGENTOS_RATE_LIMIT": "0",
    }  # fmt: skip
    agentos = shutil.which("agentos") or str(Path(sys.executable).with_name("agentos"))
    started = [
        subprocess.Popen(
            [agentos, "up", "--data-dir", str(state), "--port", str(agentos_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)], env=env),
    ]  # fmt: skip
    try:
        yield f"http://127.0.0.1:{agentos_port}", f"http://127.0.0.1:{bare_port}"
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_ready(url: str, path: str) -> None:
    """Return once ``url + path`` answers 200 with a healthy status."""
    async with httpx.AsyncClient() as client:
        with trio.fail_after(READY_SECONDS):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(url + path)
                    if response.status_code == 200 and response.json().get("status") in (
                        "ok", "healthy",
                    ):  # fmt: skip
                        return
                await trio.sleep(0.2)


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    """Count, rate and percentiles of ``latencies`` measured over ``seconds``."""
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "per_second": len(ordered) / seconds,
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
    }


async def load(
    seconds: float, clients: int, request: Callable[[httpx.AsyncClient], Awaitable[None]]
) -> dict[str, float]:
    """``clients`` connections, each sending requests back to back for ``seconds``."""
    latencies: list[float] = []
    until = time.perf_counter() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            await request(http)  # warm: the connection is made before timing
            while time.perf_counter() < until:
                start = time.perf_counter()
                await request(http)
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(client)
    return summary(latencies, time.perf_counter() - start)


async def ws_round_trips(
    url: str, seconds: float, message: dict[str, Any], reply: str
) -> dict[str, float]:
    """One WebSocket, one message at a time: send, wait for the answer of type ``reply``."""
    latencies: list[float] = []
    async with open_websocket_url(url) as ws:
        until = time.perf_counter() + seconds
        start_all = time.perf_counter()
        n = 0
        while time.perf_counter() < until:
            n += 1
            start = time.perf_counter()
            await ws.send_message(json.dumps({**message, "id": n}))
            while True:
                answer = json.loads(await ws.get_message())
                if answer.get("type") == reply:
                    break
            latencies.append(time.perf_counter() - start)
        return summary(latencies, time.perf_counter() - start_all)


def checked(response: httpx.Response) -> None:
    """Refuse an answer that is not a 200: a failing path must not count as fast."""
    if response.status_code != 200:
        msg = f"{response.request.url}: {response.status_code} {response.text[:200]}"
        raise RuntimeError(msg)


async def measure(seconds: float, clients: int) -> dict[str, Any]:
    """Start both servers, run every row, stop them."""
    state = Path(tempfile.mkdtemp(prefix="bench-http-", dir="/tmp"))
    os.chmod(state, 0o755)  # noqa: PTH101, S103 - the web tier may run as another user
    auth = {"Authorization": f"Bearer {TOKEN}"}
    tool = {"tool_id": "system.time", "params": {}}
    try:
        with servers(state) as (agentos, bare):
            print("starting agentos up and the bare app ...", file=sys.stderr, flush=True)
            await wait_ready(agentos, "/health")
            await wait_ready(bare, "/")

            async def health(http: httpx.AsyncClient) -> None:
                checked(await http.get(agentos + "/health"))

            async def apps(http: httpx.AsyncClient) -> None:
                checked(await http.get(agentos + "/apps", headers=auth))

            async def execute(http: httpx.AsyncClient) -> None:
                checked(await http.post(agentos + "/services/execute", json=tool, headers=auth))

            async def floor(http: httpx.AsyncClient) -> None:
                checked(await http.get(bare + "/"))

            results: dict[str, Any] = {}
            rows = (("health", health), ("apps", apps), ("execute", execute), ("bare", floor))
            for key, request in rows:
                print(f"measuring {key} ...", file=sys.stderr, flush=True)
                results[key] = await load(seconds, clients, request)
            ws_base = agentos.replace("http://", "ws://")
            print("measuring WebSocket round trips ...", file=sys.stderr, flush=True)
            results["ws_tool"] = await ws_round_trips(
                f"{ws_base}/stream?token={TOKEN}", seconds, {"type": "tool_call", **tool},
                "tool_result",
            )  # fmt: skip
            results["ws_bare"] = await ws_round_trips(
                bare.replace("http://", "ws://") + "/", seconds, {"type": "echo"}, "echo"
            )
            return results
    finally:
        shutil.rmtree(state, ignore_errors=True)


ROWS = [
    ("GET /health", "health", "bare"),
    ("GET /apps", "apps", "bare"),
    ("POST /services/execute (system.time)", "execute", "bare"),
    ("bare Hypercorn GET (anchor)", "bare", None),
    ("WebSocket tool_call round trip", "ws_tool", "ws_bare"),
    ("bare Hypercorn WebSocket echo (anchor)", "ws_bare", None),
]


def table(results: dict[str, Any], seconds: float, clients: int) -> str:
    """The rows, each with its anchor's ratio where it has one."""
    lines = [
        f"HTTP with {clients} clients, WebSocket with 1, {seconds} s per row",
        f"{'path':<42}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs anchor':>11}",
    ]
    for label, key, anchor in ROWS:
        row = results[key]
        ratio = f"{row['per_second'] / results[anchor]['per_second']:.3f}x" if anchor else "-"
        lines.append(
            f"{label:<42}{row['per_second']:>10,.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{ratio:>11}"
        )
    lines.append("ratios: req/s over the anchor's, measured in this run on this machine.")
    return "\n".join(lines)


def main() -> int:
    """Measure, print the table, and with --json a JSON object as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each row")
    parser.add_argument("--clients", type=int, default=8, help="HTTP connections at once")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    results = trio.run(measure, args.seconds, args.clients)
    print(table(results, args.seconds, args.clients))
    if args.json:
        print(json.dumps({"bench": "http", "seconds": args.seconds, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
