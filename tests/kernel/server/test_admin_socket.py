"""The admin socket for real: a kernel service on a Unix socket, raw peers and the client."""

import datetime as dt
import json
import os
import shutil
import socket
import stat
import struct
import sys

import msgpack
import pytest
import trio
from pydantic import Field, ValidationError

from kernel.abi import (
    CallSpec,
    ErrorCode,
    FrameDecoder,
    SyscallError,
    WireModel,
    decode_payload,
    encode_frame,
)
from kernel.abi.system import NoArgs
from kernel.client import DataLayout, open_kernel_client, read_kernel_record
from kernel.config import KernelSettings
from kernel.core import Kernel
from kernel.service import KernelService
from sandbox.errors import AlreadyExistsError, FailedPreconditionError
from tests._support import RunningKernel, needs_root
from tests.kernel.server._peers import raw_frame


class Seconds(WireModel):
    seconds: float = Field(ge=0, le=30)


class Count(WireModel):
    n: int = Field(ge=0, le=1000)


class Item(WireModel):
    i: int


class Blob(WireModel):
    size: int


class BlobResult(WireModel):
    data: bytes


class Stamp(WireModel):
    at: dt.datetime  # not msgpack-native: a handler bug the kernel must contain


SLEEP = CallSpec(name="test.sleep", summary="", args=Seconds, result=Seconds, capability=None)
BLOCK = CallSpec(name="test.block", summary="", args=NoArgs, result=NoArgs, capability=None)
COUNT = CallSpec(
    name="test.count", summary="", args=Count, result=Count, capability=None, item=Item
)
CRASH = CallSpec(name="test.crash", summary="", args=NoArgs, result=NoArgs, capability=None)
BLOB = CallSpec(name="test.blob", summary="", args=Blob, result=BlobResult, capability=None)
STAMP = CallSpec(name="test.stamp", summary="", args=NoArgs, result=Stamp, capability=None)


class ProbeCalls:
    def __init__(self):
        self.block_started = trio.Event()
        self.block_cancelled = trio.Event()

    async def sleep(self, ctx, args):
        await trio.sleep(args.seconds)
        return args

    async def block(self, ctx, args):
        self.block_started.set()
        try:
            await trio.sleep_forever()
        finally:
            self.block_cancelled.set()

    async def count(self, ctx, args):
        for i in range(args.n):
            await ctx.emit(Item(i=i))
        return args

    async def crash(self, ctx, args):
        raise RuntimeError("a bug in a handler")

    async def blob(self, ctx, args):
        return BlobResult(data=b"x" * args.size)

    async def stamp(self, ctx, args):
        return Stamp(at=dt.datetime.now(tz=dt.UTC))

    def pairs(self):
        return [
            (SLEEP, self.sleep),
            (BLOCK, self.block),
            (COUNT, self.count),
            (CRASH, self.crash),
            (BLOB, self.blob),
            (STAMP, self.stamp),
        ]


@pytest.fixture
def calls():
    return ProbeCalls()


@pytest.fixture
async def kernel(nursery, data_dir, calls):
    settings = KernelSettings(data_dir=data_dir, max_frame_bytes=64 * 1024)
    running = RunningKernel(nursery, settings, Kernel(extra_calls=calls.pairs()))
    await running.start()
    return running


async def test_socket_is_0600_recorded_and_removed_on_stop(kernel, data_dir):
    mode = kernel.socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert kernel.socket.stat().st_uid == os.geteuid()
    record = read_kernel_record(DataLayout(data_dir))
    assert record.pid == os.getpid()
    assert record.socket == kernel.socket
    await kernel.stop()
    assert not kernel.socket.exists()
    assert read_kernel_record(DataLayout(data_dir)) is None
    assert sorted(os.listdir(data_dir / "run")) == []


async def test_pipelined_requests_complete_out_of_order(kernel, connect):
    peer = await connect()
    await peer.send({"id": 1, "call": "test.sleep", "args": {"seconds": 0.5}})
    await peer.send({"id": 2, "call": "sys.ping", "args": {"data": "fast"}})
    await peer.send({"id": 3, "call": "test.sleep", "args": {"seconds": 0.1}})
    replies = [await peer.receive() for _ in range(3)]
    assert [r["id"] for r in replies] == [2, 3, 1]
    assert all(r["ok"] for r in replies)
    assert replies[0]["result"]["data"] == "fast"


async def test_client_calls_from_many_tasks_share_one_connection(kernel):
    async with open_kernel_client(kernel.socket) as client:
        results = {}

        async def ping(i):
            results[i] = await client.call("sys.ping", {"data": str(i)})

        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.call, "test.sleep", {"seconds": 0.3})
            for i in range(100):
                nursery.start_soon(ping, i)
        assert {i: r["data"] for i, r in results.items()} == {i: str(i) for i in range(100)}


@pytest.mark.parametrize(
    ("frame", "expected_id", "fragment"),
    [
        (raw_frame(b"\xc1\xc1"), None, "not valid msgpack"),
        (raw_frame(msgpack.packb([1, 2, 3])), None, "must hold a map"),
        (raw_frame(msgpack.packb({1: "x"})), None, "not valid msgpack"),
        (encode_frame({"id": "seven", "call": "sys.ping"}), None, "id"),
        (encode_frame({"id": 9, "call": "sys.ping", "args": "no"}), 9, "args"),
        (encode_frame({"id": 10, "call": "no.such"}), 10, "no such call"),
        (encode_frame({"id": 11, "call": "proc.info", "args": {"pid": "x"}}), 11, "args.pid"),
    ],
)
async def test_malformed_frames_get_errors_and_the_connection_goes_on(
    kernel, connect, frame, expected_id, fragment
):
    peer = await connect()
    bystander = await connect()
    await peer.send_raw(frame)
    reply = await peer.receive()
    assert reply["id"] == expected_id
    assert reply["ok"] is False
    assert reply["error"]["code"] in {"EINVAL", "ENOSYS"}
    assert fragment in reply["error"]["message"]
    await peer.send({"id": 100, "call": "sys.ping", "args": {"data": "still here"}})
    assert (await peer.receive())["result"]["data"] == "still here"
    await bystander.send({"id": 1, "call": "sys.ping"})
    assert (await bystander.receive())["ok"] is True


async def test_oversize_frame_ends_that_connection_only(kernel, connect):
    peer = await connect()
    bystander = await connect()
    await peer.send_raw(struct.pack(">I", 64 * 1024 + 1) + b"\x00" * 100)
    reply = await peer.receive()
    assert (reply["id"], reply["error"]["code"]) == (None, "EINVAL")
    assert "exceeds the limit" in reply["error"]["message"]
    assert await peer.at_eof()
    await bystander.send({"id": 1, "call": "sys.ping"})
    assert (await bystander.receive())["ok"] is True


async def test_duplicate_in_flight_id_is_refused(kernel, connect):
    peer = await connect()
    await peer.send({"id": 5, "call": "test.sleep", "args": {"seconds": 0.3}})
    await peer.send({"id": 5, "call": "sys.ping"})
    first = await peer.receive()
    assert (first["id"], first["error"]["code"]) == (5, "EINVAL")
    assert "already in flight" in first["error"]["message"]
    assert (await peer.receive())["ok"] is True


async def test_a_failing_handler_is_eio_and_the_kernel_keeps_serving(kernel, caplog):
    async with open_kernel_client(kernel.socket) as client:
        with pytest.raises(SyscallError) as info:
            await client.call("test.crash")
        assert info.value.code == ErrorCode.EIO
        assert "internal error" in info.value.message
        assert (await client.call("sys.ping"))["data"] == ""
    assert "a bug in a handler" in caplog.text


async def test_a_reply_too_large_to_send_is_emsgsize(kernel):
    async with open_kernel_client(kernel.socket) as client:
        with pytest.raises(SyscallError) as info:
            await client.call("test.blob", {"size": 100 * 1024})
        assert info.value.code == ErrorCode.EMSGSIZE
        assert (await client.call("test.blob", {"size": 10}))["data"] == b"x" * 10


async def test_a_result_msgpack_cannot_encode_fails_that_call_alone(kernel, caplog):
    async with open_kernel_client(kernel.socket) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.call, "test.sleep", {"seconds": 0.3})  # in flight meanwhile
            with pytest.raises(SyscallError) as info:
                await client.call("test.stamp")
        assert info.value.code == ErrorCode.EIO
        assert "cannot be encoded" in info.value.message
        assert (await client.call("sys.ping"))["data"] == ""
    assert "the result of test.stamp cannot be encoded" in caplog.text


async def test_an_abandoned_stream_does_not_stall_the_connection(kernel):
    async with open_kernel_client(kernel.socket) as client:
        async with client.stream("test.count", {"n": 1000}) as items:
            async for _ in items:
                # Let the reader fill this stream's buffer and block on it, then leave.
                await trio.sleep(0.5)
                break
        with trio.fail_after(5):
            assert (await client.call("sys.ping", {"data": "still"}))["data"] == "still"


async def test_streaming_call_sends_items_then_the_result(kernel):
    async with open_kernel_client(kernel.socket) as client:
        async with client.stream("test.count", {"n": 5}) as items:
            seen = [item["i"] async for item in items]
        assert seen == [0, 1, 2, 3, 4]
        assert items.result == {"n": 5}


async def test_peer_leaving_mid_call_cancels_the_call(kernel, calls, connect):
    peer = await connect()
    await peer.send({"id": 1, "call": "test.block"})
    with trio.fail_after(5):
        await calls.block_started.wait()
    await peer.stream.aclose()
    with trio.fail_after(5):
        await calls.block_cancelled.wait()


async def test_sys_cancel_ends_one_request_and_the_connection_goes_on(kernel, calls, connect):
    peer = await connect()
    await peer.send({"id": 1, "call": "test.block"})
    with trio.fail_after(5):
        await calls.block_started.wait()
    await peer.send({"id": 2, "call": "sys.cancel", "args": {"id": 1}})
    replies = {reply["id"]: reply for reply in [await peer.receive(), await peer.receive()]}
    assert replies[2]["result"] == {"cancelled": True}
    assert (replies[1]["ok"], replies[1]["error"]["code"]) == (False, "ECANCELED")
    assert calls.block_cancelled.is_set()
    await peer.send({"id": 3, "call": "sys.cancel", "args": {"id": 1}})  # no longer in flight
    assert (await peer.receive())["result"] == {"cancelled": False}
    await peer.send({"id": 4, "call": "sys.ping", "args": {"data": "on"}})
    assert (await peer.receive())["result"]["data"] == "on"
    text = kernel.kernel.metrics.render().decode()
    assert 'agentos_syscalls_total{call="test.block",outcome="cancelled"} 1.0' in text


async def test_a_request_cannot_be_cancelled_from_another_connection(kernel, calls, connect):
    owner, other = await connect(), await connect()
    await owner.send({"id": 1, "call": "test.block"})
    with trio.fail_after(5):
        await calls.block_started.wait()
    await other.send({"id": 2, "call": "sys.cancel", "args": {"id": 1}})
    assert (await other.receive())["result"] == {"cancelled": False}
    assert not calls.block_cancelled.is_set()


async def test_the_client_cancels_in_the_kernel_what_it_stops_waiting_for(kernel, calls):
    async with open_kernel_client(kernel.socket) as client:
        with trio.move_on_after(0.2):
            await client.call("test.block")
        with trio.fail_after(5):
            await calls.block_cancelled.wait()  # with the connection still open
        bus = kernel.kernel.events
        async with client.stream("sys.events") as events:
            with trio.fail_after(5):
                while bus.subscribers != 1:
                    await trio.sleep(0.01)
            del events  # left without reading a thing
        with trio.fail_after(5):
            while bus.subscribers != 0:
                await trio.sleep(0.01)
        assert (await client.call("sys.ping", {"data": "on"}))["data"] == "on"


async def test_many_concurrent_connections(kernel):
    async def one(i):
        async with open_kernel_client(kernel.socket) as client:
            assert (await client.call("sys.ping", {"data": str(i)}))["data"] == str(i)

    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(one, i)


async def test_a_stale_socket_file_is_replaced(nursery, data_dir):
    settings = KernelSettings(data_dir=data_dir)
    settings.socket_path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(os.fspath(settings.socket_path))
    stale.close()  # the file stays; nobody listens
    running = RunningKernel(nursery, settings, Kernel())
    await running.start()
    async with open_kernel_client(settings.socket_path) as client:
        assert (await client.call("sys.ping"))["data"] == ""


async def test_a_second_kernel_on_the_same_socket_is_refused(kernel):
    with pytest.raises(AlreadyExistsError, match="already serving"):
        await KernelService(kernel.settings).run()
    async with open_kernel_client(kernel.socket) as client:  # the first one is unharmed
        assert (await client.call("sys.ping"))["data"] == ""


async def test_a_non_socket_at_the_path_is_left_alone(data_dir):
    settings = KernelSettings(data_dir=data_dir)
    settings.socket_path.parent.mkdir(parents=True)
    settings.socket_path.write_text("precious")
    with pytest.raises(FailedPreconditionError, match="not a socket"):
        await KernelService(settings).run()
    assert settings.socket_path.read_text() == "precious"


def test_socket_paths_too_long_for_af_unix_are_refused(data_dir):
    long_path = data_dir / ("x" * 120) / "kernel.sock"
    with pytest.raises(ValidationError, match="Unix sockets allow 107"):
        KernelSettings(data_dir=data_dir, kernel_socket=long_path)
    with pytest.raises(ValidationError, match="choose a shorter data directory"):
        KernelSettings(data_dir=data_dir / ("d" * 100))


async def test_two_kernels_starting_together_cannot_both_win(nursery, data_dir):
    settings = KernelSettings(data_dir=data_dir)
    results = []

    async def attempt():
        try:
            results.append(await nursery.start(KernelService(settings).run))
        except AlreadyExistsError as exc:
            results.append(exc)

    async with trio.open_nursery() as race:
        race.start_soon(attempt)
        race.start_soon(attempt)
    assert sorted(type(r).__name__ for r in results) == ["AlreadyExistsError", "KernelHandle"]
    async with open_kernel_client(settings.socket_path) as client:  # the winner serves
        assert (await client.call("sys.ping"))["data"] == ""


@pytest.mark.parametrize("umask", [0o002, 0o077])
async def test_the_directories_the_kernel_makes_do_not_depend_on_the_umask(
    nursery, data_dir, umask
):
    settings = KernelSettings(
        data_dir=data_dir / "new" / "data", kernel_socket=data_dir / "new" / "sock" / "k.sock"
    )
    old = os.umask(umask)
    try:
        handle = await nursery.start(KernelService(settings).run)
    finally:
        os.umask(old)
    assert handle.socket.exists()
    modes = {
        path: stat.S_IMODE(path.stat().st_mode)
        for path in (settings.data_dir, settings.layout.run_dir, settings.socket_path.parent)
    }
    assert modes == dict.fromkeys(modes, 0o755)
    assert stat.S_IMODE(settings.layout.kernel_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770])
async def test_a_socket_directory_others_can_write_is_refused(data_dir, mode):
    shared = data_dir / "shared"
    shared.mkdir()
    shared.chmod(mode)
    settings = KernelSettings(data_dir=data_dir, kernel_socket=shared / "k.sock")
    with pytest.raises(FailedPreconditionError, match="writable by others"):
        await KernelService(settings).run()


async def test_a_sticky_shared_directory_is_accepted(nursery, data_dir):
    shared = data_dir / "sticky"
    shared.mkdir()
    shared.chmod(0o1777)
    settings = KernelSettings(data_dir=data_dir, kernel_socket=shared / "k.sock")
    handle = await nursery.start(KernelService(settings).run)
    assert handle.socket.exists()


@needs_root
async def test_a_socket_directory_of_another_user_is_refused(data_dir):
    theirs = data_dir / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    settings = KernelSettings(data_dir=data_dir, kernel_socket=theirs / "k.sock")
    with pytest.raises(FailedPreconditionError, match="belongs to uid 65534"):
        await KernelService(settings).run()


_FOREIGN_PEER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(bytes.fromhex(sys.argv[2]))
data = b""
while True:
    chunk = s.recv(65536)
    data += chunk
    if not chunk or sys.argv[3] == "one" and len(data) >= 4 + int.from_bytes(data[:4], "big"):
        break
print(data.hex())
"""


async def call_as_nobody(socket_path, message, *, until_eof=False):
    """Send one request from a process running as uid 65534, and decode what comes back.

    The peer uses the system Python with no site packages, so it needs nothing from this
    checkout; it reads one frame, or (``until_eof``) until the kernel closes.
    """
    request = encode_frame(message).hex()
    result = await trio.run_process(
        [
            "/usr/bin/python3",
            "-I",
            "-S",
            "-c",
            _FOREIGN_PEER,
            os.fspath(socket_path),
            request,
            "all" if until_eof else "one",
        ],
        user=65534,
        group=65534,
        extra_groups=[],
        capture_stdout=True,
        cwd="/",
    )
    decoder = FrameDecoder()
    decoder.feed(bytes.fromhex(result.stdout.decode().strip()))
    (reply,) = [decode_payload(p) for p in decoder]
    return reply


needs_system_python = pytest.mark.skipif(
    not shutil.which("/usr/bin/python3"), reason="needs /usr/bin/python3 for a foreign peer"
)


@needs_root
@needs_system_python
async def test_peers_of_other_uids_are_refused_even_if_file_mode_allows(kernel):
    # Defence in depth: even with the socket file opened up, SO_PEERCRED stops a stranger.
    kernel.socket.chmod(0o666)
    reply = await call_as_nobody(kernel.socket, {"id": 1, "call": "sys.info"}, until_eof=True)
    assert reply["id"] is None
    assert reply["error"]["code"] == "EPERM"
    assert "uid 65534" in reply["error"]["message"]


@needs_root
@needs_system_python
async def test_the_socket_owner_is_an_allowed_peer(nursery, data_dir):
    settings = KernelSettings(data_dir=data_dir)
    started = await nursery.start(KernelService(settings, socket_owner=(65534, 65534)).run)
    st = started.socket.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o600)
    reply = await call_as_nobody(
        started.socket, {"id": 1, "call": "sys.ping", "args": {"data": "hi"}}
    )
    assert (reply["id"], reply["ok"], reply["result"]["data"]) == (1, True, "hi")


@needs_root
@needs_system_python
async def test_admin_uids_admits_an_extra_uid(nursery, data_dir, monkeypatch):
    monkeypatch.setenv("AGENTOS_ADMIN_UIDS", "[65534]")
    settings = KernelSettings(data_dir=data_dir)
    assert settings.admin_uids == frozenset({65534})
    started = await nursery.start(KernelService(settings).run)
    started.socket.chmod(0o666)  # let the stranger reach the file; SO_PEERCRED decides
    reply = await call_as_nobody(
        started.socket, {"id": 1, "call": "sys.ping", "args": {"data": "in"}}
    )
    assert (reply["ok"], reply["result"]["data"]) == (True, "in")


async def test_sys_info_reports_this_host(kernel):
    async with open_kernel_client(kernel.socket) as client:
        info = await client.call("sys.info")
    assert info["pid"] == os.getpid()  # the kernel runs in this test process
    assert info["os"] == os.uname().sysname
    assert info["kernel_release"] == os.uname().release
    assert info["cpu_count"] == os.cpu_count()
    assert info["calls"] == len(kernel.kernel.calls.catalog)
    assert sys.version.startswith(info["python"])
    assert json.dumps(info)  # JSON-representable, as `agentos call` prints it


async def test_past_128_calls_in_flight_the_kernel_stops_reading(kernel, connect):
    peer = await connect()
    for i in range(128):
        await peer.send({"id": i, "call": "test.sleep", "args": {"seconds": 1.0}})
    await peer.send({"id": 1000, "call": "sys.ping"})
    replies = [await peer.receive() for _ in range(129)]
    order = [r["id"] for r in replies]
    # Every slot was taken by a sleep, so the ping was not even read until one finished.
    assert order.index(1000) > 0
    assert set(order) == {*range(128), 1000}


async def test_a_peer_that_never_reads_its_replies_is_not_read_either(kernel, connect):
    peer = await connect()
    request = encode_frame({"id": 0, "call": "sys.ping", "args": {"data": "x" * 4096}})
    total = 5000
    sent = 0

    async def flood():
        nonlocal sent
        for i in range(total):
            await peer.send({"id": i, "call": "sys.ping", "args": {"data": "x" * 4096}})
            sent += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        last = -1
        while sent != last:  # until the kernel stops taking requests (or all are taken)
            last = sent
            await trio.sleep(1)
        nursery.cancel_scope.cancel()
    # In flight, queued replies and both socket buffers hold a few hundred at most.
    assert sent * len(request) < 4 << 20, f"the kernel read {sent} of {total} requests"
