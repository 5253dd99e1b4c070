"""How fast a syscall is: sys.ping over the kernel's admin socket, beside anchors.

The kernel runs as in production, `agentos kernel --socket` in a process of its own; this
script is the client. Three paths are measured in one run, each against a server process:

- kernel.client -> kernel: what the orchestrator and the CLI do (`KernelClient.call`).
- raw frames -> kernel: the same kernel, fed pre-encoded requests by a minimal client that
  only splits frames; the difference to the row above is the client library's share.
- raw frames -> trio echo: a trio server with the same 4-byte framing that sends each frame
  back, no msgpack, no pydantic, no dispatch; the floor of a trio round trip on a Unix
  socket. The kernel rows' distance to it is the kernel's overhead.

For each: round-trip latency (p50, p99) and calls/s sequentially on one connection;
calls/s with --in-flight requests pipelined on one connection; calls/s over --connections
connections in parallel, each sequential; and the server process's CPU time per call.
The same figures are taken from inside a container too (`from_a_container`): a process
the kernel runs in runc, using the in-sandbox client `agentos_kernel` on its own socket.

Usage: python bench/syscall.py [--seconds S] [--in-flight N] [--connections N] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import trio

from kernel.abi import FrameDecoder, SyscallError, decode_payload, encode_frame
from kernel.client import open_kernel_client
from sandbox.runtime import unix_socket_answers

WARMUP_SECONDS = 0.5
READY_SECONDS = 30.0
RAW_IDS = 1024  # request ids a raw client cycles through: far more than may be in flight

Call = Callable[[], Awaitable[Any]]


@dataclasses.dataclass
class Server:
    """A server process and the socket it serves."""

    label: str
    process: subprocess.Popen[bytes]
    socket: Path
    log: Path

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status(self) -> str:
        """Whether the server runs, and the end of its log."""
        state = self.process.poll()
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return f"{self.label}: {'running' if state is None else f'exited with {state}'}\n{log}"


@dataclasses.dataclass
class Window:
    """What happened inside one measurement window."""

    calls: int
    seconds: float
    latencies: list[float]
    server_cpu: float
    client_cpu: float

    @property
    def per_second(self) -> float:
        """Completed calls per second."""
        return self.calls / self.seconds

    def cpu_us_per_call(self) -> dict[str, float]:
        """Server and client (this process) CPU time per completed call, in µs."""
        per_call = 1e6 / max(self.calls, 1)
        return {
            "server": round(self.server_cpu * per_call, 1),
            "client": round(self.client_cpu * per_call, 1),
        }


# ------------------------------------------------------------------------ servers


async def serve_echo(path: str) -> None:
    """The anchor: send every frame back as it is, framing and nothing else."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(512)

    async def echo(stream: trio.SocketStream) -> None:
        decoder = FrameDecoder()
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async with stream:
                while data := await stream.receive_some(64 * 1024):
                    decoder.feed(data)
                    for payload in decoder:
                        await stream.send_all(len(payload).to_bytes(4, "big") + payload)

    await trio.serve_listeners(echo, [trio.SocketListener(sock)])


@contextlib.contextmanager
def server_process(
    label: str, argv: list[str], path: Path, env: dict[str, str]
) -> Iterator[Server]:
    """Run a server process for the block; it gets SIGTERM (then SIGKILL) at the end."""
    log = path.with_suffix(".log")
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=sink, env=env, cwd="/")
    try:
        yield Server(label, process, path, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_ready(server: Server) -> None:
    """Return once the server accepts connections."""
    with trio.fail_after(READY_SECONDS):
        while not unix_socket_answers(server.socket):
            if server.process.poll() is not None:
                raise RuntimeError(server.status())
            await trio.sleep(0.05)


# ------------------------------------------------------------------------ clients


class RawConnection:
    """A minimal client: writes prepared frames, splits replies by length, decodes nothing."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._decoder = FrameDecoder()
        self._ready: list[bytes] = []

    async def receive(self) -> bytes:
        """The next reply payload."""
        while not self._ready:
            data = await self.stream.receive_some(64 * 1024)
            if not data:
                msg = "the server closed the connection"
                raise ConnectionError(msg)
            self._decoder.feed(data)
            self._ready.extend(self._decoder)
        return self._ready.pop(0)

    async def round_trip(self, frame: bytes) -> bytes:
        """Send one frame and wait for one reply."""
        await self.stream.send_all(frame)
        return await self.receive()


@contextlib.asynccontextmanager
async def raw_connection(path: Path) -> AsyncIterator[RawConnection]:
    """A RawConnection to ``path``, closed at the end of the block."""
    stream = await trio.open_unix_socket(os.fspath(path))
    async with stream:
        yield RawConnection(stream)


def ping_frames(data: str) -> list[bytes]:
    """Pre-encoded sys.ping requests, one per id a raw client uses."""
    return [
        encode_frame({"id": i, "call": "sys.ping", "args": {"data": data}}) for i in range(RAW_IDS)
    ]


def check_ping_reply(payload: bytes, data: str) -> None:
    """Raise unless ``payload`` is a successful sys.ping reply echoing ``data``."""
    reply = decode_payload(payload)
    if reply.get("ok") is not True or reply["result"]["data"] != data:
        msg = f"unexpected reply: {reply}"
        raise RuntimeError(msg)


# ------------------------------------------------------------------- measurement


def cpu_now(server: Callable[[], float]) -> tuple[float, float]:
    """CPU seconds used so far by the server and by this process (the client)."""
    return server(), time.process_time()


def spent(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    """Server and client CPU seconds between two ``cpu_now`` readings."""
    return after[0] - before[0], after[1] - before[1]


async def closed_loop(calls: Sequence[Call], seconds: float, cpu: Callable[[], float]) -> Window:
    """Loop each call in its own task; count what completes inside the window.

    All tasks run through a warm-up first; calls in flight when the window closes finish
    but are not counted.
    """
    measuring = stop = False
    latencies: list[float] = []

    async def loop(call: Call) -> None:
        while not stop:
            started = time.perf_counter()
            await call()
            if measuring:
                latencies.append(time.perf_counter() - started)

    async with trio.open_nursery() as nursery:
        for call in calls:
            nursery.start_soon(loop, call)
        await trio.sleep(WARMUP_SECONDS)
        before, started, measuring = cpu_now(cpu), time.perf_counter(), True
        await trio.sleep(seconds)
        measuring, elapsed, after = False, time.perf_counter() - started, cpu_now(cpu)
        stop = True
    return Window(len(latencies), elapsed, latencies, *spent(before, after))


async def raw_pipelined(
    connection: RawConnection,
    frames: list[bytes],
    in_flight: int,
    seconds: float,
    cpu: Callable[[], float],
    check: Callable[[bytes], None],
) -> Window:
    """Keep ``in_flight`` requests outstanding on one raw connection; count replies.

    Every 256th reply is vetted by ``check``.
    """
    slots = trio.Semaphore(in_flight)
    measuring = False
    sent = counted = 0

    async def send() -> None:
        nonlocal sent
        while True:
            await slots.acquire()
            await connection.stream.send_all(frames[sent % len(frames)])
            sent += 1

    async def receive() -> None:
        nonlocal counted
        for received in itertools.count():
            reply = await connection.receive()
            if received % 256 == 0:
                check(reply)
            counted += measuring
            slots.release()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        nursery.start_soon(receive)
        await trio.sleep(WARMUP_SECONDS)
        before, started, measuring = cpu_now(cpu), time.perf_counter(), True
        await trio.sleep(seconds)
        measuring, elapsed, after = False, time.perf_counter() - started, cpu_now(cpu)
        nursery.cancel_scope.cancel()  # replies still due are dropped with the connection
    return Window(counted, elapsed, [], *spent(before, after))


@dataclasses.dataclass(frozen=True)
class Options:
    """What to measure and for how long."""

    seconds: float
    in_flight: int
    connections: int
    data: str


Phase = Callable[[], Awaitable[Window]]
PHASES = ("sequential", "pipelined", "parallel")


def kernel_client_phases(server: Server, options: Options) -> dict[str, Phase]:
    """sys.ping through kernel.client, as the orchestrator makes calls."""
    args = {"data": options.data}

    async def sequential() -> Window:
        async with open_kernel_client(server.socket) as client:
            result = await client.call("sys.ping", args)
            if result["data"] != options.data:
                msg = f"sys.ping echoed {result['data']!r}"
                raise RuntimeError(msg)
            ping = functools.partial(client.call, "sys.ping", args)
            return await closed_loop([ping], options.seconds, server.cpu_seconds)

    async def pipelined() -> Window:
        async with open_kernel_client(server.socket) as client:
            pings = [functools.partial(client.call, "sys.ping", args)] * options.in_flight
            return await closed_loop(pings, options.seconds, server.cpu_seconds)

    async def parallel() -> Window:
        async with contextlib.AsyncExitStack() as stack:
            pings = []
            for _ in range(options.connections):
                client = await stack.enter_async_context(open_kernel_client(server.socket))
                pings.append(functools.partial(client.call, "sys.ping", args))
            return await closed_loop(pings, options.seconds, server.cpu_seconds)

    return {"sequential": sequential, "pipelined": pipelined, "parallel": parallel}


def raw_phases(
    server: Server, options: Options, check: Callable[[bytes], None]
) -> dict[str, Phase]:
    """Pre-encoded sys.ping requests through a RawConnection; ``check`` vets replies."""
    frames = ping_frames(options.data)

    async def sequential() -> Window:
        async with raw_connection(server.socket) as connection:
            check(await connection.round_trip(frames[0]))
            ping = functools.partial(connection.round_trip, frames[0])
            return await closed_loop([ping], options.seconds, server.cpu_seconds)

    async def pipelined() -> Window:
        async with raw_connection(server.socket) as connection:
            return await raw_pipelined(
                connection, frames, options.in_flight, options.seconds, server.cpu_seconds, check
            )

    async def parallel() -> Window:
        async with contextlib.AsyncExitStack() as stack:
            pings = []
            for _ in range(options.connections):
                connection = await stack.enter_async_context(raw_connection(server.socket))
                pings.append(functools.partial(connection.round_trip, frames[0]))
            return await closed_loop(pings, options.seconds, server.cpu_seconds)

    return {"sequential": sequential, "pipelined": pipelined, "parallel": parallel}


INSIDE = r"""
import json, socket, struct, sys, threading, time
import agentos_kernel, msgpack

phase, seconds, in_flight, connections, data = sys.argv[1:6]
seconds, in_flight, connections = float(seconds), int(in_flight), int(connections)
HEADER = struct.Struct(">I")
body = msgpack.packb({"id": 1, "call": "sys.ping", "args": {"data": data}})
FRAME = HEADER.pack(len(body)) + body


def loop(kernel, until, latencies):
    calls = 0
    while (start := time.perf_counter()) < until:
        kernel.call("sys.ping", data=data)
        latencies.append(time.perf_counter() - start)
        calls += 1
    return calls


def read_exact(sock, size):
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise RuntimeError("kernel closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def warm(kernel):
    return loop(kernel, time.perf_counter() + WARMUP, [])


cpu = time.process_time()
latencies, calls, extra = [], 0, 0  # extra: warm-up and drain calls, outside the window
if phase == "sequential":
    with agentos_kernel.connect() as kernel:
        extra += warm(kernel)
        begin = time.perf_counter()
        calls = loop(kernel, begin + seconds, latencies)
elif phase == "pipelined":  # raw frames, as the host's raw client: nothing decoded
    with agentos_kernel.connect() as kernel:
        extra += warm(kernel) + in_flight
        sock = kernel._sock
        sock.sendall(FRAME * in_flight)
        begin = time.perf_counter()
        while time.perf_counter() < begin + seconds:
            (length,) = HEADER.unpack(read_exact(sock, 4))
            read_exact(sock, length)
            calls += 1
            sock.sendall(FRAME)
        for _ in range(in_flight):
            (length,) = HEADER.unpack(read_exact(sock, 4))
            read_exact(sock, length)
else:  # parallel: one thread and connection each, each sequential
    kernels = [agentos_kernel.connect() for _ in range(connections)]
    for kernel in kernels:
        extra += warm(kernel)
    begin = time.perf_counter()
    counts = [0] * connections

    def run(i):
        counts[i] = loop(kernels[i], begin + seconds, [])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = sum(counts)
print(json.dumps({
    "calls": calls, "extra": extra, "seconds": time.perf_counter() - begin,
    "latencies": latencies,
    "client_cpu": time.process_time() - cpu,
}))
""".replace("WARMUP", repr(WARMUP_SECONDS))


async def from_a_container(kernel: Server, options: Options) -> dict[str, Window] | str:
    """The same figures from an app process inside a sandbox (or why they cannot be taken).

    The kernel runs a process with a command (a runc container under the standard
    policy); each phase is one ``proc.exec`` of a client in it that uses
    ``agentos_kernel`` on ``/run/agentos/kernel.sock``, the socket every call on which
    acts as that process. The kernel's CPU is read around each exec and shared out over
    every call the exec made (so the exec's own small cost is in it). The pipelined phase
    sends raw frames, as the host's raw client.
    """
    async with open_kernel_client(kernel.socket) as client:
        try:
            info = await client.call(
                "proc.spawn", {"name": "bench", "command": {"argv": ["sleep", "3600"]}}
            )
        except SyscallError as exc:
            return f"no container: {exc.message}"
        pid = info["pid"]
        try:
            windows = {}
            for phase in PHASES:
                print(f"measuring inside a container, {phase} ...", file=sys.stderr, flush=True)
                argv = [
                    "python3", "-c", INSIDE, phase, str(options.seconds), str(options.in_flight),
                    str(options.connections), options.data,
                ]  # fmt: skip
                before = kernel.cpu_seconds()
                out, err = bytearray(), bytearray()
                async with client.stream(
                    "proc.exec", {"pid": pid, "command": {"argv": argv}}
                ) as items:
                    async for item in items:
                        (out if item["stream"] == "stdout" else err).extend(item["data"])
                    result = items.result
                server_cpu = kernel.cpu_seconds() - before
                if result["exit_code"] != 0:
                    msg = f"the client in the container failed: {err.decode(errors='replace')}"
                    raise RuntimeError(msg)
                figures = json.loads(out)
                # The kernel's CPU is read around the whole exec: share it out over every
                # call made, warm-up and drain too, and keep the window's calls' part.
                calls = figures["calls"]
                share = calls / max(1, calls + figures["extra"])
                windows[phase] = Window(
                    calls=calls, seconds=figures["seconds"], latencies=figures["latencies"],
                    server_cpu=server_cpu * share, client_cpu=figures["client_cpu"] * share,
                )  # fmt: skip
            return windows
        finally:
            await client.call("proc.kill", {"pid": pid})


def summarize(windows: dict[str, Window]) -> dict[str, Any]:
    """The figures of one path: latency in µs, rates in calls/s, server CPU in µs/call."""
    ordered = sorted(windows["sequential"].latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "latency_us": {
            "p50": round(statistics.median(ordered) * 1e6, 1),
            "p99": round(p99 * 1e6, 1),
        },
        "calls_per_s": {name: round(w.per_second) for name, w in windows.items()},
        "cpu_us_per_call": {name: w.cpu_us_per_call() for name, w in windows.items()},
        "calls": {name: w.calls for name, w in windows.items()},
    }


async def measure(kernel: Server, echo: Server, options: Options) -> dict[str, Any]:
    """Every row of the table."""
    await wait_ready(kernel)
    await wait_ready(echo)
    sent = {frame[4:] for frame in ping_frames(options.data)}

    def check_echo(payload: bytes) -> None:
        if payload not in sent:
            msg = "the echo server changed the frame"
            raise RuntimeError(msg)

    paths = {
        "kernel.client -> kernel": kernel_client_phases(kernel, options),
        "raw frames -> kernel": raw_phases(
            kernel, options, functools.partial(check_ping_reply, data=options.data)
        ),
        "raw frames -> trio echo": raw_phases(echo, options, check_echo),
    }
    # Phase by phase, so that a change in the host's load between figures skews a column
    # less than it would a row.
    windows: dict[str, dict[str, Window]] = {label: {} for label in paths}
    for phase in PHASES:
        for label, phases in paths.items():
            print(f"measuring {label}, {phase} ...", file=sys.stderr, flush=True)
            windows[label][phase] = await phases[phase]()
    rows: dict[str, Any] = {label: summarize(w) for label, w in windows.items()}
    container = await from_a_container(kernel, options)
    label = "agentos_kernel, container"
    rows[label] = summarize(container) if isinstance(container, dict) else {"skipped": container}
    return rows


# ------------------------------------------------------------------------ output


def table(rows: dict[str, Any], options: Options) -> str:
    """The results as a table, with the kernel's and the client's cost over the anchor."""
    n, k = options.in_flight, options.connections
    heads = ("p50 µs", "p99 µs", "1 conn/s", f"{n} in flight/s", f"{k} conns/s", "server", "client")
    widths = [max(len(h) + 2, 9) for h in heads]
    title = (
        f"sys.ping round trips on a Unix socket, {options.seconds:g} s per figure "
        f"(+{WARMUP_SECONDS:g} s warm-up), {os.cpu_count()} CPUs"
    )
    lines = [
        title,
        (
            f"{'':<25}{'latency':^{sum(widths[:2])}}{'calls/s':^{sum(widths[2:5])}}"
            f"{'CPU µs/call':^{sum(widths[5:])}}"
        ),
        f"{'path':<25}" + "".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)),
    ]
    for label, row in rows.items():
        if "skipped" in row:
            lines.append(f"{label:<25}  not measured: {row['skipped']}")
            continue
        rate, cpu = row["calls_per_s"], row["cpu_us_per_call"]["pipelined"]
        cells = (
            f"{row['latency_us']['p50']:.0f}",
            f"{row['latency_us']['p99']:.0f}",
            f"{rate['sequential']:,}",
            f"{rate['pipelined']:,}",
            f"{rate['parallel']:,}",
            f"{cpu['server']:.0f}",
            f"{cpu['client']:.0f}",
        )
        lines.append(
            f"{label:<25}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
        )
    kernel, raw = rows["kernel.client -> kernel"], rows["raw frames -> kernel"]
    echo = rows["raw frames -> trio echo"]
    server_cost = (
        raw["cpu_us_per_call"]["pipelined"]["server"]
        - echo["cpu_us_per_call"]["pipelined"]["server"]
    )
    client_cost = (
        kernel["cpu_us_per_call"]["pipelined"]["client"]
        - raw["cpu_us_per_call"]["pipelined"]["client"]
    )
    lines += [
        (
            f"CPU per call over the echo anchor: the kernel {server_cost:+.0f} µs, "
            f"kernel.client {client_cost:+.0f} µs (over the raw client)."
        ),
        "latency, 1 conn/s: one call at a time on one connection; CPU: user+system time per",
        f"call with {n} in flight, of the server process and of this one (the client). Client",
        "and server share the host's CPUs: wall-clock figures move with the host's load.",
    ]
    return "\n".join(lines)


def main() -> int:
    """Measure, print the table, and with --json a JSON object as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each window")
    parser.add_argument("--in-flight", type=int, default=128, help="pipelined requests")
    parser.add_argument("--connections", type=int, default=8, help="parallel connections")
    parser.add_argument("--data", default="x" * 16, help="the string sys.ping echoes")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--serve-echo", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo:
        trio.run(serve_echo, args.serve_echo)
        return 0
    options = Options(args.seconds, args.in_flight, args.connections, args.data)
    agentos = Path(sys.executable).parent / "agentos"
    if not agentos.exists():
        print(f"{agentos} is missing: run this with the venv's python", file=sys.stderr)
        return 2
    # Where the kernel lives is ours to choose; other AGENTOS_* settings pass through.
    placed = {"AGENTOS_DATA_DIR", "AGENTOS_KERNEL_SOCKET"}
    env = {k: v for k, v in os.environ.items() if k not in placed}
    state = Path(tempfile.mkdtemp(prefix="bench-syscall-", dir="/tmp"))
    try:
        kernel_argv = [
            os.fspath(agentos), "kernel", "--log-level", "warning",
            "--data-dir", os.fspath(state / "data"), "--socket", os.fspath(state / "kernel.sock"),
        ]  # fmt: skip
        echo_argv = [sys.executable, os.fspath(Path(__file__).resolve()), "--serve-echo"]
        with (
            server_process("kernel", kernel_argv, state / "kernel.sock", env) as kernel,
            server_process(
                "echo", [*echo_argv, os.fspath(state / "echo.sock")], state / "echo.sock", env
            ) as echo,
        ):
            try:
                rows = trio.run(measure, kernel, echo, options)
            except BaseException:
                for server in (kernel, echo):
                    print(server.status(), file=sys.stderr)
                raise
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print(table(rows, options))
    if args.json:
        print(
            json.dumps(
                {"bench": "syscall", "options": dataclasses.asdict(options), "results": rows}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
