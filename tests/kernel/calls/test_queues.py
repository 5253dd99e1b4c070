"""queue.* through the call table: order, waiting, pubsub, limits, access, release."""

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.abi import ErrorCode, SyscallError
from kernel.abi.ipc import QueueType
from kernel.core import Kernel
from kernel.ipc import QueueTable
from tests.kernel._calls import ADMIN, as_process, code_of, code_when, dispatch

IPC = ("send_message", "receive_message", "spawn_process", "system_info")


async def process(kernel, name="p", app_id=None):
    info = await dispatch(
        kernel, ADMIN, "proc.spawn", name=name, app_id=app_id, capabilities=list(IPC)
    )
    return as_process(info["pid"], *IPC)


async def make(kernel, caller, **args):
    return (await dispatch(kernel, caller, "queue.create", **args))["queue_id"]


async def test_fifo_and_priority_order():
    kernel = Kernel()
    me = await process(kernel)
    fifo = await make(kernel, me)
    ranked = await make(kernel, me, queue_type="priority")
    for data, priority in [(b"a", 1), (b"b", 5), (b"c", 1), (b"d", 9)]:
        for queue in (fifo, ranked):
            await dispatch(kernel, me, "queue.send", queue_id=queue, data=data, priority=priority)

    async def drain(queue):
        return [
            (await dispatch(kernel, me, "queue.receive", queue_id=queue))["data"] for _ in range(4)
        ]

    assert await drain(fifo) == [b"a", b"b", b"c", b"d"]
    assert await drain(ranked) == [b"d", b"b", b"a", b"c"]  # equal priorities: sent order


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-3, 3), max_size=30))
def test_a_priority_queue_hands_out_by_priority_then_sending_order(priorities):
    async def run():
        table = QueueTable()
        queue = table.create(
            creator=1, kind=QueueType.PRIORITY, capacity=100, max_message=10, public=False,
            app_id=None,
        )  # fmt: skip
        for index, priority in enumerate(priorities):
            await table.send(
                queue, str(index).encode(), sender=1, priority=priority, wait=False, within=None
            )
        got = []
        for _ in priorities:
            message = await table.receive(queue, receiver=1, wait=False, within=None)
            got.append(int(message.data))
        expected = sorted(range(len(priorities)), key=lambda i: (-priorities[i], i))
        assert got == expected
        assert table.held == 0

    trio.run(run)


async def test_a_full_queue_makes_senders_wait_and_an_empty_one_receivers():
    kernel = Kernel()
    me = await process(kernel)
    queue = await make(kernel, me, capacity=1)
    await dispatch(kernel, me, "queue.send", queue_id=queue, data=b"1")
    assert await code_of(
        kernel, me, "queue.send", queue_id=queue, data=b"2", nonblocking=True
    ) == ErrorCode.EAGAIN  # fmt: skip
    assert await code_of(
        kernel, me, "queue.send", queue_id=queue, data=b"2", timeout=0.05
    ) == ErrorCode.ETIMEDOUT  # fmt: skip
    received = []

    async def receiver():
        for _ in range(3):
            message = await dispatch(kernel, me, "queue.receive", queue_id=queue)
            received.append(message["data"])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await dispatch(kernel, me, "queue.send", queue_id=queue, data=b"2")  # waits for room
        await dispatch(kernel, me, "queue.send", queue_id=queue, data=b"3")
    assert received == [b"1", b"2", b"3"]
    assert await code_of(
        kernel, me, "queue.receive", queue_id=queue, nonblocking=True
    ) == ErrorCode.EAGAIN  # fmt: skip
    big = b"x" * (64 * 1024 + 1)
    assert await code_of(kernel, me, "queue.send", queue_id=queue, data=big) == ErrorCode.EMSGSIZE


async def test_pubsub_copies_to_every_subscriber_and_never_waits_for_a_slow_one():
    kernel = Kernel()
    publisher = await process(kernel, "pub", app_id="chat")
    fast, slow = await process(kernel, "fast", "chat"), await process(kernel, "slow", "chat")
    topic = await make(kernel, publisher, queue_type="pubsub", capacity=2)
    for subscriber in (fast, slow):
        await dispatch(kernel, subscriber, "queue.subscribe", queue_id=topic)
    sent = []
    for i in range(3):
        result = await dispatch(kernel, publisher, "queue.send", queue_id=topic, data=b"%d" % i)
        sent.append(result["delivered"])
        got = await dispatch(kernel, fast, "queue.receive", queue_id=topic)
        assert got["data"] == b"%d" % i
    assert sent == [2, 2, 1]  # the slow one's buffer was full for the third
    assert [
        (await dispatch(kernel, slow, "queue.receive", queue_id=topic))["data"] for _ in range(2)
    ] == [b"0", b"1"]
    info = (await dispatch(kernel, publisher, "queue.stats", queue_id=topic))["queues"][0]
    assert (info["subscribers"], info["dropped"], info["sent"]) == (2, 1, 3)
    await dispatch(kernel, slow, "queue.unsubscribe", queue_id=topic)
    assert await code_of(kernel, slow, "queue.receive", queue_id=topic) == ErrorCode.EINVAL
    assert await code_of(kernel, publisher, "queue.subscribe", queue_id=await make(
        kernel, publisher
    )) == ErrorCode.EINVAL  # not pubsub  # fmt: skip


async def test_queues_belong_to_their_app_unless_public():
    kernel = Kernel()
    owner = await process(kernel, "owner", app_id="notes")
    same_app = await process(kernel, "helper", app_id="notes")
    stranger = await process(kernel, "stranger", app_id="mail")
    private = await make(kernel, owner)
    public = await make(kernel, owner, public=True)
    await dispatch(kernel, same_app, "queue.send", queue_id=private, data=b"ok")
    assert await code_of(
        kernel, stranger, "queue.send", queue_id=private, data=b"no"
    ) == ErrorCode.EPERM  # fmt: skip
    assert await code_of(kernel, stranger, "queue.receive", queue_id=private) == ErrorCode.EPERM
    await dispatch(kernel, stranger, "queue.send", queue_id=public, data=b"hello")
    visible = (await dispatch(kernel, stranger, "queue.stats"))["queues"]
    assert [q["queue_id"] for q in visible] == [public]
    for call in ("queue.close", "queue.destroy"):
        assert await code_of(kernel, same_app, call, queue_id=private) == ErrorCode.EPERM


async def test_a_closed_queue_drains_then_says_epipe_and_destroy_wakes_waiters():
    kernel = Kernel()
    me = await process(kernel)
    queue = await make(kernel, me)
    await dispatch(kernel, me, "queue.send", queue_id=queue, data=b"last")
    await dispatch(kernel, me, "queue.close", queue_id=queue)
    assert await code_of(kernel, me, "queue.send", queue_id=queue, data=b"x") == ErrorCode.EPIPE
    assert (await dispatch(kernel, me, "queue.receive", queue_id=queue))["data"] == b"last"
    assert await code_of(kernel, me, "queue.receive", queue_id=queue) == ErrorCode.EPIPE
    other = await make(kernel, me)

    async def destroy():
        await dispatch(kernel, me, "queue.destroy", queue_id=other)

    assert await code_when(kernel, me, "queue.receive", destroy, queue_id=other) == ErrorCode.EPIPE


async def test_the_budget_bounds_what_all_queues_hold_and_exit_releases_it():
    table = QueueTable(budget=10)
    queue = table.create(
        creator=1, kind=QueueType.FIFO, capacity=100, max_message=100, public=False, app_id=None
    )
    await table.send(queue, b"x" * 8, sender=1, priority=0, wait=False, within=None)
    with pytest.raises(SyscallError) as full:
        await table.send(queue, b"x" * 3, sender=1, priority=0, wait=False, within=None)
    assert full.value.code == ErrorCode.ENOMEM
    kernel = Kernel()
    me = await process(kernel)
    mine = await make(kernel, me, queue_type="pubsub")
    others = await make(kernel, await process(kernel, "other"), queue_type="pubsub", public=True)
    for queue_id in (mine, others):
        await dispatch(kernel, me, "queue.subscribe", queue_id=queue_id)
        await dispatch(kernel, me, "queue.send", queue_id=queue_id, data=b"kept")
    assert kernel.queues.held == 8
    await dispatch(kernel, ADMIN, "proc.kill", pid=me.pid)
    assert kernel.queues.held == 0
    assert [q.id for q in kernel.queues.queues()] == [others]
    assert kernel.queues.get(others).subscribers == {}
