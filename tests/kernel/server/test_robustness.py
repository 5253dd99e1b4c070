"""The kernel under abuse: garbage, wrong types, peers that vanish, a thousand connections.

Each case runs against a real kernel on a real Unix socket and checks that every peer
gets its error or its answer, and that the kernel serves on afterwards.
test_admin_socket.py covers each kind of malformed frame alone; here they come mixed on
one connection, at scale, or with the peer leaving at the worst moment.
"""

import errno
import os
import random
import resource
import socket

import msgpack
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from kernel.abi import (
    MAX_CONTAINER_ITEMS,
    CallSpec,
    MalformedFrameError,
    MalformedRequestError,
    WireModel,
    decode_payload,
    encode_frame,
    parse_request,
)
from kernel.client import open_kernel_client
from kernel.config import KernelSettings
from kernel.core import Kernel
from tests._support import RunningKernel
from tests.kernel.server._peers import RawPeer, raw_frame

MAX_FRAME = 1024 * 1024
TICKS = 1_000_000  # more items than any test lets a stream send


class Ticks(WireModel):
    n: int = Field(ge=0, le=TICKS)
    then_idle: bool = False  # after n items, wait for more as an event stream would


class Tick(WireModel):
    i: int


TICK = CallSpec(name="test.ticks", summary="", args=Ticks, result=Ticks, capability=None, item=Tick)


class StreamProbe:
    """A streaming call that records how it ended."""

    def __init__(self):
        self.started = trio.Event()
        self.cancelled = trio.Event()
        self.emitted = 0
        self.finished = 0

    async def ticks(self, ctx, args):
        self.started.set()
        try:
            for i in range(args.n):
                await ctx.emit(Tick(i=i))
                self.emitted += 1
            if args.then_idle:
                await trio.sleep_forever()
        except trio.Cancelled:
            self.cancelled.set()
            raise
        self.finished += 1
        return args

    async def wait_stalled(self):
        """Return once the call has stopped emitting (blocked on a full outbox)."""
        await self.started.wait()
        last = -1
        while self.emitted != last:
            last = self.emitted
            await trio.sleep(0.05)


@pytest.fixture
def probe():
    return StreamProbe()


@pytest.fixture
async def kernel(nursery, data_dir, probe):
    settings = KernelSettings(data_dir=data_dir, max_frame_bytes=MAX_FRAME)
    running = RunningKernel(nursery, settings, Kernel(extra_calls=[(TICK, probe.ticks)]))
    await running.start()
    return running


def request(request_id, call, args=None):
    message = {"id": request_id, "call": call}
    if args is not None:
        message["args"] = args
    return encode_frame(message)


async def assert_serving(kernel, data="still serving"):
    """A new connection gets its answer."""
    with trio.fail_after(5):
        async with open_kernel_client(kernel.socket) as client:
            assert (await client.call("sys.ping", {"data": data}))["data"] == data


# -------------------------------------------------------------- garbage among requests

# (frame, expected reply): ("ok", id, echoed data) or ("error", id or None, code, fragment)
MIXED = [
    (request(1, "sys.ping", {"data": "first"}), ("ok", 1, "first")),
    (raw_frame(b"\xc1"), ("error", None, "EINVAL", "not valid msgpack")),
    (raw_frame(b""), ("error", None, "EINVAL", "not valid msgpack")),
    (raw_frame(msgpack.packb("a string")), ("error", None, "EINVAL", "must hold a map")),
    (raw_frame(msgpack.packb({1: 2})), ("error", None, "EINVAL", "not valid msgpack")),
    (raw_frame(msgpack.packb({b"id": 2})), ("error", None, "EINVAL", "keys must be strings")),
    (raw_frame(b"\xa3ab\xff"), ("error", None, "EINVAL", "not valid msgpack")),  # bad UTF-8
    # An id in a frame with trailing bytes is not read: nothing of that frame is trusted.
    (
        raw_frame(msgpack.packb({"id": 2, "call": "sys.ping"}) + b"\x00"),
        ("error", None, "EINVAL", "not valid msgpack"),
    ),
    (raw_frame(b"\x81\xa1a" * 10_000 + b"\xc0"), ("error", None, "EINVAL", "not valid msgpack")),
    (
        request(3, "sys.ping", {"data": [0] * (MAX_CONTAINER_ITEMS + 1)}),
        ("error", None, "EINVAL", "max_array_len"),
    ),
    (request(4, "sys.ping", "not a map"), ("error", 4, "EINVAL", "args")),
    (request(5, "no.such"), ("error", 5, "ENOSYS", "no such call")),
    (request(6, "sys.ping", {"data": 6}), ("error", 6, "EINVAL", "args.data")),
    (request(7, "sys.ping", {"data": b"bytes"}), ("error", 7, "EINVAL", "args.data")),
    (request(8, "sys.ping", {"data": "x" * 5000}), ("error", 8, "EINVAL", "args.data")),
    (request(9, "proc.info", {"pid": True}), ("error", 9, "EINVAL", "args.pid")),
    (request(10, "proc.info", {"pid": 1.0}), ("error", 10, "EINVAL", "args.pid")),
    (request(11, "sys.ping", {"unknown": 1}), ("error", 11, "EINVAL", "args.unknown")),
    (encode_frame({"id": 12, "call": "sys.ping", "extra": 1}), ("error", 12, "EINVAL", "extra")),
    (encode_frame({"id": 13}), ("error", 13, "EINVAL", "call")),
    (request(14, "SYS.PING"), ("error", 14, "EINVAL", "call")),
    (request(15, "sys." + "x" * 100), ("error", 15, "EINVAL", "call")),
    (request(True, "sys.ping"), ("error", None, "EINVAL", "id")),
    (request(1.0, "sys.ping"), ("error", None, "EINVAL", "id")),
    (request(-1, "sys.ping"), ("error", None, "EINVAL", "id")),
    (request(2**63, "sys.ping"), ("error", None, "EINVAL", "id")),
    (request("16", "sys.ping"), ("error", None, "EINVAL", "id")),
    (request(17, "test.ticks", {"n": 3}), ("ok", 17, None)),
    (request(4, "sys.ping", {"data": "id 4 was refused, so it is free"}), ("ok", 4, None)),
    (request(18, "sys.ping", {"data": "last"}), ("ok", 18, "last")),
]


def assert_reply(reply, expected):
    if expected[0] == "ok":
        _, _, data = expected
        assert reply["ok"] is True, reply
        if data is not None:
            assert reply["result"]["data"] == data
    else:
        _, _, code, fragment = expected
        assert (reply["ok"], reply["error"]["code"]) == (False, code), reply
        assert fragment in reply["error"]["message"], reply


@pytest.mark.parametrize("chunk", [None, 7], ids=["one write", "7-byte writes"])
async def test_garbage_and_requests_mixed_on_one_connection_each_get_their_reply(
    kernel, connect, chunk
):
    peer = await connect()
    await peer.send_raw(b"".join(frame for frame, _ in MIXED), chunk=chunk)
    streamed = 3  # test.ticks sends three items before its result
    replies = await peer.receive_many(len(MIXED) + streamed)

    items = [r for r in replies if "item" in r]
    assert [(r["id"], r["item"]) for r in items] == [(17, {"i": i}) for i in range(3)]
    finals = [r for r in replies if "item" not in r]
    # Frames whose id cannot be read are answered in the order they were sent; the rest
    # in completion order, matched by id (4 twice: refused, then free for a new request).
    by_id = {}
    for reply in finals:
        by_id.setdefault(reply["id"], []).append(reply)
    expected_by_id = {}
    for _, expected in MIXED:
        expected_by_id.setdefault(expected[1], []).append(expected)
    assert by_id.keys() == expected_by_id.keys()
    for request_id, expected_replies in expected_by_id.items():
        got = by_id[request_id]
        assert len(got) == len(expected_replies), (request_id, got)
        for reply, expected in zip(got, expected_replies, strict=True):
            assert_reply(reply, expected)
    assert by_id[17][0]["result"] == {"n": 3, "then_idle": False}
    assert by_id[4][1]["result"]["data"] == "id 4 was refused, so it is free"
    await assert_serving(kernel)


async def test_random_payloads_in_wellformed_frames_each_get_one_error(kernel, connect):
    rng = random.Random(20240607)  # noqa: S311 - noise, seeded to be repeatable
    payloads = [rng.randbytes(rng.randrange(0, 64)) for _ in range(300)]
    peer = await connect()
    await peer.send_raw(b"".join(raw_frame(p) for p in payloads))
    replies = await peer.receive_many(len(payloads))
    assert {(r["id"], r["ok"], r["error"]["code"]) for r in replies} == {(None, False, "EINVAL")}
    await peer.send_raw(request(1, "sys.ping", {"data": "after the noise"}))
    reply = await peer.receive()
    assert (reply["id"], reply["result"]["data"]) == (1, "after the noise")


messages = st.dictionaries(
    st.sampled_from(["id", "call", "args"]) | st.text(max_size=5),
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=10)
    | st.lists(st.integers(min_value=-(2**63), max_value=2**63), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    max_size=4,
)


@given(st.binary(max_size=100) | messages.map(lambda m: msgpack.packb(m, use_bin_type=True)))
def test_any_payload_is_a_request_or_one_of_the_two_documented_errors(payload):
    # What the server does with each frame it reads, short of running the call.
    try:
        message = decode_payload(payload)
    except MalformedFrameError:
        return
    try:
        parsed = parse_request(message)
    except MalformedRequestError as exc:
        refused = exc
    else:
        assert 0 <= parsed.id < 2**63
        assert isinstance(parsed.args, dict)
        return
    readable = message.get("id")
    # The reply carries the request's id exactly when that id is a valid one.
    if type(readable) is int and 0 <= readable < 2**63:
        assert refused.request_id == readable
    else:
        assert refused.request_id is None


# --------------------------------------------------------------- peers that vanish


@pytest.mark.parametrize(
    "peer_kind", ["raw, reading", "raw, not reading", "kernel.client", "kernel.client, idle stream"]
)
async def test_a_peer_leaving_mid_stream_cancels_the_call_and_the_kernel_serves_on(
    kernel, connect, probe, peer_kind
):
    # With an idle stream the kernel has nothing to write, so only its reader can notice.
    bystander = await connect()
    if peer_kind.startswith("kernel.client"):
        idle = peer_kind.endswith("idle stream")
        args = {"n": 10, "then_idle": True} if idle else {"n": TICKS}
        seen = []
        async with (
            open_kernel_client(kernel.socket) as client,
            client.stream("test.ticks", args) as items,
        ):
            async for item in items:
                seen.append(item["i"])
                if len(seen) == 10:
                    break
        assert seen == list(range(10))
    else:
        peer = await connect()
        await peer.send_raw(request(1, "test.ticks", {"n": TICKS}))
        if peer_kind == "raw, reading":
            items = await peer.receive_many(10)
            assert [(m["id"], m["item"]["i"]) for m in items] == [(1, i) for i in range(10)]
        else:
            with trio.fail_after(5):
                await probe.wait_stalled()  # its outbox and our socket buffer are full
        await peer.stream.aclose()

    with trio.fail_after(5):
        await probe.cancelled.wait()
    assert probe.finished == 0
    assert 10 <= probe.emitted < TICKS
    if peer_kind.endswith("idle stream"):
        assert probe.emitted == 10

    await bystander.send_raw(request(7, "sys.ping", {"data": "bystander"}))
    reply = await bystander.receive()
    assert (reply["id"], reply["result"]["data"]) == (7, "bystander")
    async with open_kernel_client(kernel.socket) as client:  # streams still work
        async with client.stream("test.ticks", {"n": 5}) as items:
            assert [item["i"] async for item in items] == [0, 1, 2, 3, 4]
        assert items.result == {"n": 5, "then_idle": False}
    assert probe.finished == 1


async def test_a_partial_frame_waits_for_its_peer_without_holding_up_others(kernel, connect):
    slow = await connect()
    frame = request(1, "sys.ping", {"data": "s" * 1000})
    await slow.send_raw(frame[:2])  # not even a whole header
    await slow.send_raw(frame[2:500])
    other = await connect()
    await other.send_raw(request(1, "sys.ping", {"data": "other"}))
    reply = await other.receive()
    assert reply["result"]["data"] == "other"
    await slow.send_raw(frame[500:])
    reply = await slow.receive()
    assert (reply["id"], reply["result"]["data"]) == (1, "s" * 1000)

    gone = await connect()  # leaves in the middle of a frame
    await gone.send_raw(frame[:500])
    await gone.stream.aclose()
    await other.send_raw(request(2, "sys.ping", {"data": "and on"}))
    reply = await other.receive()
    assert (reply["id"], reply["result"]["data"]) == (2, "and on")
    await assert_serving(kernel)


# ---------------------------------------------------------- a thousand connections

CONNECTIONS = 1000


@pytest.fixture
def fds_for_connections():
    """Room for CONNECTIONS sockets at both ends (the kernel runs in this process)."""
    needed = 2 * CONNECTIONS + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def connect_waiting(path, *, timeout=10):
    """Connect to a Unix socket, waiting while its accept queue is full; (stream, waited).

    A non-blocking connect(2) to a Unix socket with a full backlog fails with EAGAIN and,
    unlike TCP, never completes later. trio.open_unix_socket takes that EAGAIN for "in
    progress" and returns a socket that is not connected, so this retries by hand.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    waited, delay = False, 0.001
    try:
        with trio.fail_after(timeout):
            while True:
                try:
                    sock.connect(path)
                    break
                except BlockingIOError as exc:
                    if exc.errno != errno.EAGAIN:
                        raise
                    waited = True
                    await trio.sleep(delay)
                    delay = min(2 * delay, 0.05)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(trio.socket.from_stdlib_socket(sock)), waited


async def test_a_thousand_connections_open_at_once_each_get_their_own_answer(
    kernel, fds_for_connections
):
    path = os.fspath(kernel.socket)
    all_open, all_answered = trio.Event(), trio.Event()
    opened, answered, waited = 0, 0, 0
    answers, open_fds = {}, []

    async def one(i):
        nonlocal opened, answered, waited
        stream, had_to_wait = await connect_waiting(path)
        waited += had_to_wait
        async with stream:
            opened += 1
            if opened == CONNECTIONS:
                all_open.set()
            await all_open.wait()
            peer = RawPeer(stream)
            await peer.send_raw(request(i, "sys.ping", {"data": f"connection {i}"}))
            reply = await peer.receive(timeout=20)
            answers[i] = (reply["id"], reply["ok"], reply["result"]["data"])
            answered += 1
            if answered == CONNECTIONS:
                open_fds.append(len(os.listdir("/proc/self/fd")))
                all_answered.set()
            await all_answered.wait()  # hold every connection open until all are answered

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(CONNECTIONS):
                nursery.start_soon(one, i)

    assert answers == {i: (i, True, f"connection {i}") for i in range(CONNECTIONS)}
    assert open_fds[0] >= 2 * CONNECTIONS  # both ends of every connection, open together
    # All connected in one scheduling round, before the kernel accepted any: those past
    # the listen backlog found the queue full and waited for it to drain.
    assert waited > 0
    await assert_serving(kernel)


async def test_kernel_clients_past_the_listen_backlog_wait_their_turn(kernel, fds_for_connections):
    outcomes = {}

    async def one(i):
        try:
            async with open_kernel_client(kernel.socket) as client:
                outcomes[i] = (await client.call("sys.ping", {"data": str(i)}))["data"]
        except Exception as exc:  # noqa: BLE001 - every outcome is recorded and compared
            outcomes[i] = repr(exc)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(600):  # more than the backlog of 512, all in one round
                nursery.start_soon(one, i)
    failed = {i: o for i, o in outcomes.items() if o != str(i)}
    assert not failed, f"{len(failed)} of 600 failed, e.g. {next(iter(failed.values()))}"
