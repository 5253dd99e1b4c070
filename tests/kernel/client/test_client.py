import os
import struct

import pytest
import trio
import trio.testing

from kernel.abi import (
    ErrorCode,
    FrameDecoder,
    SyscallInvalidArgumentError,
    SyscallNotFoundError,
    SyscallPermissionError,
    SyscallUnavailableError,
    decode_payload,
    encode_frame,
)
from kernel.abi.process import PROC_INFO, PROC_SPAWN, ProcPidArgs, ProcSpawnArgs
from kernel.abi.system import SYS_INFO, SysInfoResult
from kernel.client import (
    DataLayout,
    KernelClient,
    KernelRecord,
    locate_admin_socket,
    open_kernel_client,
    write_kernel_record,
)
from sandbox.errors import NotFoundError


async def test_typed_calls_return_models(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        info = await client.invoke(SYS_INFO)
        assert isinstance(info, SysInfoResult)
        spawned = await client.invoke(PROC_SPAWN, ProcSpawnArgs(name="notes", app_id="notes"))
        again = await client.invoke(PROC_INFO, ProcPidArgs(pid=spawned.pid))
        assert again == spawned


async def test_errors_arrive_as_typed_category_exceptions(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        with pytest.raises(NotFoundError) as info:
            await client.call("proc.info", {"pid": 424242})
        assert isinstance(info.value, SyscallNotFoundError)
        assert info.value.code == ErrorCode.ESRCH
        assert info.value.call == "proc.info"


async def test_connecting_to_nothing_is_econnrefused(data_dir):
    with pytest.raises(SyscallUnavailableError) as info:
        async with open_kernel_client(data_dir / "nothing.sock"):
            pass
    assert info.value.code == ErrorCode.ECONNREFUSED


async def test_after_the_kernel_stops_calls_fail_at_once(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        await running_kernel.stop()
        with trio.fail_after(5):
            await client.wait_closed()
        assert client.closed
        with pytest.raises(SyscallUnavailableError) as info:
            await client.call("sys.ping")
        assert info.value.code == ErrorCode.ECONNRESET


class Outcome:
    """An exception a background task caught, and an event for its arrival."""

    def __init__(self):
        self._event = trio.Event()
        self.value = None

    def set(self, value):
        self.value = value
        self._event.set()

    async def wait(self):
        await self._event.wait()


def failing_call(nursery, client, name, args=None, *, raises):
    """Start ``client.call(name)`` in the background; its ``raises`` lands in the Outcome."""
    outcome = Outcome()

    async def call():
        try:
            await client.call(name, args)
        except raises as exc:
            outcome.set(exc)

    nursery.start_soon(call)
    return outcome


class ScriptedKernel:
    """The kernel's side of an in-memory stream, driven by the test."""

    def __init__(self, stream):
        self.stream = stream
        self.decoder = FrameDecoder()

    async def request(self):
        while True:
            frames = list(self.decoder)
            if frames:
                assert len(frames) == 1
                return decode_payload(frames[0])
            self.decoder.feed(await self.stream.receive_some(65536))

    async def reply(self, message):
        await self.stream.send_all(encode_frame(message))


@pytest.fixture
async def scripted(nursery):
    client_end, kernel_end = trio.testing.memory_stream_pair()
    client = KernelClient(client_end)
    nursery.start_soon(client.run_reader)
    return client, ScriptedKernel(kernel_end)


async def test_out_of_order_replies_reach_their_callers(scripted, nursery):
    client, kernel = scripted
    results = {}
    both = trio.Event()

    async def call(name):
        results[name] = await client.call(name)
        if len(results) == 2:
            both.set()

    nursery.start_soon(call, "a.first")
    first = await kernel.request()
    nursery.start_soon(call, "a.second")
    second = await kernel.request()
    await kernel.reply({"id": 999, "ok": True, "result": "nobody asked"})  # dropped
    await kernel.reply({"id": second["id"], "ok": True, "result": 2})
    await kernel.reply({"id": first["id"], "ok": True, "result": 1})
    with trio.fail_after(5):
        await both.wait()
    assert results == {"a.first": 1, "a.second": 2}


async def test_a_connection_level_error_fails_everything_with_it(scripted, nursery):
    client, kernel = scripted
    errors = failing_call(nursery, client, "sys.info", raises=SyscallPermissionError)
    await kernel.request()
    await kernel.reply({"id": None, "ok": False, "error": {"code": "EPERM", "message": "no"}})
    await client.wait_closed()
    with trio.fail_after(5):
        await errors.wait()
    assert errors.value.message == "no"


@pytest.mark.parametrize(
    "reply",
    [
        {"id": 1},  # neither ok nor item
        {"id": None, "ok": True, "result": {}},  # a result for no request
    ],
)
async def test_a_malformed_reply_closes_the_connection(scripted, nursery, reply):
    client, kernel = scripted
    caught = failing_call(nursery, client, "sys.info", raises=SyscallUnavailableError)
    await kernel.request()
    await kernel.reply(reply)
    with trio.fail_after(5):
        await client.wait_closed()
        await caught.wait()
    assert caught.value.code == ErrorCode.ECONNRESET
    assert "malformed reply" in caught.value.message


async def test_a_connection_level_error_fails_every_call_with_its_code(scripted, nursery):
    client, kernel = scripted
    caught = failing_call(nursery, client, "sys.info", raises=SyscallPermissionError)
    await kernel.request()
    await kernel.reply({"id": None, "ok": False, "error": {"code": "EPERM", "message": "no"}})
    with trio.fail_after(5):
        await client.wait_closed()
        await caught.wait()
    assert caught.value.code == ErrorCode.EPERM


async def test_a_call_cancelled_before_its_frame_is_sent_leaves_nothing_pending(scripted):
    client, _ = scripted
    release = trio.Event()

    async def sending():  # another call is sending: the next ones queue for the lock
        async with client._send_lock:
            await release.wait()

    async def impatient():
        with trio.move_on_after(0.01):
            await client.call("sys.ping")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sending)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(50):
            nursery.start_soon(impatient)
        await trio.sleep(0.1)
        release.set()
    assert client._pending == {}


async def test_a_streamed_item_on_a_plain_call_is_an_error(scripted, nursery):
    client, kernel = scripted
    caught = failing_call(nursery, client, "sys.events", raises=SyscallInvalidArgumentError)
    request = await kernel.request()
    await kernel.reply({"id": request["id"], "item": {"n": 1}})
    with trio.fail_after(5):
        await caught.wait()
    assert "use KernelClient.stream()" in caught.value.message


async def test_calls_in_flight_fail_when_the_connection_drops(scripted, nursery):
    client, kernel = scripted
    failures = failing_call(
        nursery, client, "proc.wait", {"pid": 1}, raises=SyscallUnavailableError
    )
    await kernel.request()  # the call is in flight
    await kernel.stream.aclose()
    with trio.fail_after(5):
        await failures.wait()
    assert failures.value.code == ErrorCode.ECONNRESET


def test_locate_prefers_a_live_kernels_record(data_dir):
    layout = DataLayout(data_dir)
    layout.run_dir.mkdir()
    assert locate_admin_socket(data_dir) == layout.admin_socket
    custom = data_dir / "elsewhere.sock"
    write_kernel_record(
        layout, KernelRecord(pid=os.getpid(), socket=custom, started_at=0, version="x")
    )
    assert locate_admin_socket(data_dir) == custom


def test_locate_ignores_a_dead_kernels_record(data_dir):
    layout = DataLayout(data_dir)
    layout.run_dir.mkdir()
    dead = 2**22 + 12345  # above pid_max's default: no such process
    write_kernel_record(
        layout, KernelRecord(pid=dead, socket=data_dir / "x.sock", started_at=0, version="x")
    )
    assert locate_admin_socket(data_dir) == layout.admin_socket


def test_locate_survives_a_corrupt_record(data_dir, caplog):
    layout = DataLayout(data_dir)
    layout.run_dir.mkdir()
    layout.kernel_record.write_text("{not json")
    assert locate_admin_socket(data_dir) == layout.admin_socket
    assert "ignoring unreadable" in caplog.text


async def test_errors_from_the_block_leave_the_context_unwrapped(running_kernel):
    with pytest.raises(SyscallNotFoundError):
        async with open_kernel_client(running_kernel.socket) as client:
            await client.call("proc.info", {"pid": 777})
    with pytest.raises(KeyError):
        async with open_kernel_client(running_kernel.socket):
            raise KeyError("mine")


async def test_a_frame_over_the_limit_from_the_kernel_ends_the_connection(scripted, nursery):
    client, kernel = scripted
    failures = failing_call(nursery, client, "sys.info", raises=SyscallUnavailableError)
    await kernel.request()
    await kernel.stream.send_all(struct.pack(">I", 2**31))  # announces a 2 GiB frame
    with trio.fail_after(5):
        await failures.wait()
    assert failures.value.code == ErrorCode.ECONNRESET
    assert "invalid frame" in failures.value.message
    assert client.closed


async def test_connecting_through_a_file_is_unavailable_not_a_crash(data_dir):
    (data_dir / "file").write_text("not a directory")
    with pytest.raises(SyscallUnavailableError, match="cannot connect"):
        async with open_kernel_client(data_dir / "file" / "kernel.sock"):
            pass
