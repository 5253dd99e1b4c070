"""pipe.* through the call table: ends, waiting, EOF, EPIPE, limits, release on exit."""

import trio
import trio.testing

from kernel.abi import ErrorCode, SyscallError
from kernel.core import Kernel
from kernel.ipc import PIPE_BUDGET, PIPES_PER_PROCESS
from tests.kernel._calls import ADMIN, as_process, code_of, code_when, dispatch

IPC = ("send_message", "receive_message", "spawn_process", "system_info")


async def family(kernel):
    """A process and its child, both able to use pipes."""
    parent = await dispatch(kernel, ADMIN, "proc.spawn", name="parent", capabilities=list(IPC))
    child = await dispatch(kernel, ADMIN, "proc.spawn", name="child", parent=parent["pid"])
    return as_process(parent["pid"], *IPC), as_process(child["pid"], *IPC)


async def test_bytes_go_from_the_writer_to_the_reader_only():
    kernel = Kernel()
    writer, reader = await family(kernel)
    pipe = await dispatch(kernel, writer, "pipe.create", reader_pid=reader.pid)
    assert (pipe["writer_pid"], pipe["reader_pid"], pipe["capacity"]) == (
        writer.pid, reader.pid, 64 * 1024
    )  # fmt: skip
    pid = pipe["pipe_id"]
    assert (await dispatch(kernel, writer, "pipe.write", pipe_id=pid, data=b"\x00hello"))[
        "written"
    ] == 6
    read = await dispatch(kernel, reader, "pipe.read", pipe_id=pid, size=3)
    assert (read["data"], read["eof"]) == (b"\x00he", False)
    assert await code_of(kernel, reader, "pipe.write", pipe_id=pid, data=b"x") == ErrorCode.EPERM
    assert await code_of(kernel, writer, "pipe.read", pipe_id=pid) == ErrorCode.EPERM
    stranger = await dispatch(kernel, ADMIN, "proc.spawn", name="x", capabilities=list(IPC))
    outsider = as_process(stranger["pid"], *IPC)
    assert await code_of(kernel, outsider, "pipe.read", pipe_id=pid) == ErrorCode.EPERM
    assert await code_of(
        kernel, outsider, "pipe.create", reader_pid=reader.pid
    ) == ErrorCode.EPERM  # not its descendant  # fmt: skip
    info = (await dispatch(kernel, writer, "pipe.stats", pipe_id=pid))["pipes"][0]
    assert (info["buffered"], info["bytes_written"], info["bytes_read"]) == (3, 6, 3)
    assert (await dispatch(kernel, outsider, "pipe.stats"))["pipes"] == []


async def test_a_full_pipe_makes_the_writer_wait_or_says_eagain():
    kernel = Kernel()
    writer, reader = await family(kernel)
    pid = (await dispatch(kernel, writer, "pipe.create", reader_pid=reader.pid, capacity=4))[
        "pipe_id"
    ]
    assert (
        await dispatch(kernel, writer, "pipe.write", pipe_id=pid, data=b"abcdef", nonblocking=True)
    )["written"] == 4
    assert await code_of(
        kernel, writer, "pipe.write", pipe_id=pid, data=b"x", nonblocking=True
    ) == ErrorCode.EAGAIN  # fmt: skip
    assert await code_of(
        kernel, writer, "pipe.write", pipe_id=pid, data=b"x", timeout=0.05
    ) == ErrorCode.ETIMEDOUT  # fmt: skip
    done = {}

    async def write_more():
        done["result"] = await dispatch(kernel, writer, "pipe.write", pipe_id=pid, data=b"ghij")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_more)
        await trio.testing.wait_all_tasks_blocked()
        assert "result" not in done  # waiting for room
        got = b""
        while len(got) < 8:
            got += (await dispatch(kernel, reader, "pipe.read", pipe_id=pid))["data"]
    assert (got, done["result"]["written"]) == (b"abcdghij", 4)
    assert await code_of(
        kernel, reader, "pipe.read", pipe_id=pid, nonblocking=True
    ) == ErrorCode.EAGAIN  # fmt: skip


async def test_eof_after_the_writer_closes_and_epipe_after_the_reader_does():
    kernel = Kernel()
    writer, reader = await family(kernel)
    pid = (await dispatch(kernel, writer, "pipe.create", reader_pid=reader.pid))["pipe_id"]
    await dispatch(kernel, writer, "pipe.write", pipe_id=pid, data=b"last words")
    await dispatch(kernel, writer, "pipe.close", pipe_id=pid)
    assert (await dispatch(kernel, reader, "pipe.read", pipe_id=pid))["data"] == b"last words"
    assert (await dispatch(kernel, reader, "pipe.read", pipe_id=pid)) == {"data": b"", "eof": True}
    other = (await dispatch(kernel, writer, "pipe.create", reader_pid=reader.pid))["pipe_id"]
    await dispatch(kernel, reader, "pipe.close", pipe_id=other)
    assert await code_of(kernel, writer, "pipe.write", pipe_id=other, data=b"x") == ErrorCode.EPIPE


async def test_destroying_wakes_its_waiters_with_epipe_and_frees_its_room():
    kernel = Kernel()
    writer, reader = await family(kernel)
    pid = (await dispatch(kernel, writer, "pipe.create", reader_pid=reader.pid))["pipe_id"]

    async def destroy():
        assert await code_of(kernel, reader, "pipe.destroy", pipe_id=pid) == ErrorCode.EPERM
        await dispatch(kernel, writer, "pipe.destroy", pipe_id=pid)

    assert await code_when(kernel, reader, "pipe.read", destroy, pipe_id=pid) == ErrorCode.EPIPE
    assert kernel.pipes.reserved == 0
    assert await code_of(kernel, writer, "pipe.stats", pipe_id=pid) == ErrorCode.ENOENT


async def test_a_process_pipes_are_bounded_in_number_and_all_in_bytes():
    kernel = Kernel()
    writer, _ = await family(kernel)
    for _ in range(PIPES_PER_PROCESS):
        await dispatch(kernel, writer, "pipe.create", capacity=1)
    assert await code_of(kernel, writer, "pipe.create") == ErrorCode.EMFILE
    big = 1 << 20
    makers = [await family(kernel) for _ in range(PIPE_BUDGET // big // 40 + 1)]

    async def fill():
        made = 0
        for maker, _ in makers:
            for _ in range(40):
                try:
                    await dispatch(kernel, maker, "pipe.create", capacity=big)
                except SyscallError as exc:
                    return made, exc.code
                made += 1
        return made, None

    made, code = await fill()
    assert code == ErrorCode.ENOMEM
    assert made == (PIPE_BUDGET - PIPES_PER_PROCESS) // big


async def test_what_a_process_held_goes_when_it_exits():
    kernel = Kernel()
    writer, reader = await family(kernel)
    mine = (await dispatch(kernel, writer, "pipe.create", reader_pid=reader.pid))["pipe_id"]
    theirs = await dispatch(
        kernel, ADMIN, "pipe.create", writer_pid=reader.pid, reader_pid=writer.pid
    )
    await dispatch(kernel, ADMIN, "proc.kill", pid=writer.pid)  # and its child, the reader
    assert kernel.pipes.pipes() == []
    assert kernel.pipes.reserved == 0
    assert await code_of(kernel, ADMIN, "pipe.stats", pipe_id=mine) == ErrorCode.ENOENT
    assert await code_of(kernel, ADMIN, "pipe.stats", pipe_id=theirs["pipe_id"]) == ErrorCode.ENOENT


async def test_a_process_holding_both_ends_closes_one_at_a_time():
    kernel = Kernel()
    me, _ = await family(kernel)
    pid = (await dispatch(kernel, me, "pipe.create"))["pipe_id"]  # writer and reader: me
    await dispatch(kernel, me, "pipe.write", pipe_id=pid, data=b"to myself")
    info = await dispatch(kernel, me, "pipe.close", pipe_id=pid, end="write")
    assert (info["write_closed"], info["read_closed"]) == (True, False)
    assert (await dispatch(kernel, me, "pipe.read", pipe_id=pid))["data"] == b"to myself"
    assert (await dispatch(kernel, me, "pipe.read", pipe_id=pid))["eof"] is True
    await dispatch(kernel, me, "pipe.close", pipe_id=pid, end="read")
    assert kernel.pipes.pipes() == []  # both ends closed: gone
