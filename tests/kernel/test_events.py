"""The event bus, and sys.events over a real admin socket."""

import itertools

import pytest
import trio
import trio.testing

from kernel.abi import ErrorCode, Request, SyscallError, SyscallPermissionError
from kernel.abi.events import Event, EventKind
from kernel.client import open_kernel_client
from kernel.events import DEFAULT_BUFFER, EventBus
from sandbox.capabilities import Capability
from tests.kernel._calls import ADMIN, as_process, dispatch, no_emit


def ticking_clock():
    ticks = itertools.count(1000)
    return lambda: float(next(ticks))


def drain(subscription):
    events = []
    while True:
        try:
            events.append(subscription.receive_nowait())
        except trio.WouldBlock:
            return events


# ------------------------------------------------------------------------------ the bus


async def test_events_arrive_in_order_numbered_and_stamped():
    bus = EventBus(clock=ticking_clock())
    async with bus.subscribe() as events:
        published = [
            bus.publish(EventKind.PROCESS_SPAWNED, pid=1, name="a"),
            bus.publish(EventKind.PROCESS_EXITED, pid=1, exit_code=0, clean=True),
            bus.publish(EventKind.LIMIT_REACHED, limit="processes", value=4096, ratio=1.0),
        ]
        received = [await events.receive() for _ in range(3)]
    assert received == published
    assert [e.seq for e in received] == [1, 2, 3]
    assert [e.time for e in received] == [1000.0, 1001.0, 1002.0]
    assert [e.kind for e in received] == [
        EventKind.PROCESS_SPAWNED,
        EventKind.PROCESS_EXITED,
        EventKind.LIMIT_REACHED,
    ]
    assert received[1].data == {"exit_code": 0, "clean": True}
    assert received[2].pid is None
    assert all(e.dropped == 0 for e in received)


async def test_a_subscriber_sees_only_what_is_published_after_it_subscribed():
    bus = EventBus()
    bus.publish(EventKind.PROCESS_SPAWNED, pid=1)
    async with bus.subscribe() as events:
        bus.publish(EventKind.PROCESS_SPAWNED, pid=2)
        assert [e.pid for e in drain(events)] == [2]


async def test_the_kinds_filter_applies_per_subscriber_and_seq_stays_global():
    bus = EventBus()
    exits = frozenset({EventKind.PROCESS_EXITED, EventKind.PROCESS_KILLED})
    async with bus.subscribe(exits) as some, bus.subscribe() as every:
        bus.publish(EventKind.PROCESS_SPAWNED, pid=1)
        bus.publish(EventKind.PROCESS_KILLED, pid=1)
        bus.publish(EventKind.CALL_DENIED, pid=1)
        bus.publish(EventKind.PROCESS_EXITED, pid=2)
        filtered = drain(some)
        unfiltered = drain(every)
    assert [(e.kind, e.seq) for e in filtered] == [
        (EventKind.PROCESS_KILLED, 2),
        (EventKind.PROCESS_EXITED, 4),
    ]
    assert [e.seq for e in unfiltered] == [1, 2, 3, 4]
    assert all(e.dropped == 0 for e in filtered)  # filtered out is not dropped


async def test_a_full_buffer_drops_the_oldest_and_the_next_event_says_how_many():
    losses = []
    bus = EventBus(buffer=3, on_drop=losses.append)
    async with bus.subscribe() as events:
        for i in range(5):
            bus.publish(EventKind.PROCESS_SPAWNED, pid=i + 1)
        first = await events.receive()
        assert (first.seq, first.dropped) == (3, 2)  # 1 and 2 were pushed out
        assert [(e.seq, e.dropped) for e in drain(events)] == [(4, 0), (5, 0)]
        bus.publish(EventKind.PROCESS_SPAWNED, pid=6)
        assert (await events.receive()).dropped == 0  # a gap is reported once
    assert bus.dropped == 2
    assert sum(losses) == 2


async def test_a_subscriber_that_never_reads_holds_at_most_its_buffer():
    bus = EventBus()
    total = DEFAULT_BUFFER * 5
    async with bus.subscribe() as events:
        for i in range(total):
            bus.publish(EventKind.PROCESS_SPAWNED, pid=i + 1)
        assert len(events._buffer) == DEFAULT_BUFFER
        first = await events.receive()
    assert first.dropped == total - DEFAULT_BUFFER
    assert first.seq == total - DEFAULT_BUFFER + 1


async def test_a_slow_subscriber_costs_the_others_nothing():
    bus = EventBus()
    async with bus.subscribe(buffer=2) as slow, bus.subscribe() as fast:
        for i in range(100):
            bus.publish(EventKind.PROCESS_SPAWNED, pid=i + 1)
        fast_events = drain(fast)
        slow_events = drain(slow)
    assert [e.seq for e in fast_events] == list(range(1, 101))
    assert all(e.dropped == 0 for e in fast_events)
    assert [(e.seq, e.dropped) for e in slow_events] == [(99, 98), (100, 0)]
    assert bus.dropped == 98


async def test_a_waiting_subscriber_wakes_on_publish():
    bus = EventBus()
    received = []

    async def follow(events):
        async for event in events:
            received.append(event.pid)
            if len(received) == 3:
                return

    async with bus.subscribe() as events, trio.open_nursery() as nursery:
        nursery.start_soon(follow, events)
        for pid in (1, 2, 3):
            await trio.testing.wait_all_tasks_blocked()
            bus.publish(EventKind.PROCESS_SPAWNED, pid=pid)
    assert received == [1, 2, 3]


async def test_leaving_the_context_unsubscribes_and_ends_iteration():
    bus = EventBus()
    finished = trio.Event()

    async def follow(events):
        async for _ in events:
            pass
        finished.set()

    async with trio.open_nursery() as nursery:
        async with bus.subscribe() as events:
            assert bus.subscribers == 1
            nursery.start_soon(follow, events)
            await trio.testing.wait_all_tasks_blocked()
        assert bus.subscribers == 0
        with trio.fail_after(1):
            await finished.wait()
    bus.publish(EventKind.PROCESS_SPAWNED, pid=1)  # nobody to deliver to: fine
    with pytest.raises(trio.ClosedResourceError):
        events.receive_nowait()


async def test_unsubscribes_when_the_body_raises():
    bus = EventBus()
    with pytest.raises(RuntimeError):
        async with bus.subscribe():
            raise RuntimeError
    assert bus.subscribers == 0


async def test_a_cancelled_receive_loses_no_event():
    bus = EventBus()
    async with bus.subscribe() as events:
        with trio.move_on_after(0.01):
            await events.receive()
        bus.publish(EventKind.PROCESS_SPAWNED, pid=1)
        with trio.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(trio.Cancelled):
                await events.receive()  # cancelled before it takes anything
        with trio.fail_after(1):
            assert (await events.receive()).pid == 1


def test_buffers_must_hold_an_event():
    with pytest.raises(ValueError, match="at least one event"):
        EventBus(buffer=0)


async def test_subscription_buffers_must_hold_an_event():
    with pytest.raises(ValueError, match="at least one event"):
        async with EventBus().subscribe(buffer=0):
            pass


def test_event_data_must_be_msgpack_scalars():
    with pytest.raises(ValueError, match="data"):
        EventBus().publish(EventKind.PROCESS_SPAWNED, pid=1, argv=["a", "b"])


# ------------------------------------------------------------------------ denials


async def test_a_missing_capability_publishes_call_denied(running_kernel):
    kernel = running_kernel.kernel
    async with kernel.events.subscribe() as events:
        with pytest.raises(SyscallPermissionError):
            await dispatch(kernel, as_process(5, Capability.SPAWN_PROCESS), "sys.info")
        (event,) = drain(events)
    assert (event.kind, event.pid) == (EventKind.CALL_DENIED, 5)
    assert event.data["call"] == "sys.info"
    assert event.data["capability"] == "system_info"
    assert event.data["uid"] == 1000
    assert "system_info" in event.data["message"]


async def test_a_handler_refusing_the_caller_publishes_call_denied_for_ownership(running_kernel):
    kernel = running_kernel.kernel
    mine = await dispatch(kernel, ADMIN, "proc.spawn", name="mine")
    other = await dispatch(kernel, ADMIN, "proc.spawn", name="other")
    caller = as_process(mine["pid"], Capability.KILL_PROCESS)
    async with kernel.events.subscribe(frozenset({EventKind.CALL_DENIED})) as events:
        with pytest.raises(SyscallPermissionError):
            await dispatch(kernel, caller, "proc.kill", pid=other["pid"])
        (event,) = drain(events)
    assert event.pid == mine["pid"]
    assert (event.data["call"], event.data["capability"]) == ("proc.kill", "ownership")


async def test_calls_that_succeed_or_fail_otherwise_publish_nothing(running_kernel):
    kernel = running_kernel.kernel
    async with kernel.events.subscribe() as events:
        await dispatch(kernel, as_process(5), "sys.ping")
        with pytest.raises(SyscallError):
            await dispatch(kernel, ADMIN, "proc.info", pid=999)
        assert drain(events) == []


# ----------------------------------------------------------------- sys.events on the socket


async def wait_for_subscribers(bus, count):
    with trio.fail_after(5):
        while bus.subscribers != count:
            await trio.sleep(0.01)


async def test_sys_events_streams_denials_and_published_events(running_kernel):
    kernel = running_kernel.kernel
    async with (
        open_kernel_client(running_kernel.socket) as client,
        client.stream("sys.events") as items,
    ):
        await wait_for_subscribers(kernel.events, 1)
        with pytest.raises(SyscallPermissionError):
            await dispatch(kernel, as_process(7), "sys.metrics")
        kernel.events.publish(EventKind.PROCESS_SPAWNED, pid=8, name="app", app_id=None)
        with trio.fail_after(5):
            denied = Event.model_validate(await anext(items))
            spawned = Event.model_validate(await anext(items))
    assert (denied.kind, denied.pid) == (EventKind.CALL_DENIED, 7)
    assert denied.data["call"] == "sys.metrics"
    assert denied.data["capability"] == "system_info"
    assert (spawned.kind, spawned.pid) == (EventKind.PROCESS_SPAWNED, 8)
    assert spawned.data == {"name": "app", "app_id": None}
    assert spawned.seq == denied.seq + 1
    assert spawned.dropped == 0


async def test_sys_events_applies_the_kinds_filter(running_kernel):
    kernel = running_kernel.kernel
    async with (
        open_kernel_client(running_kernel.socket) as client,
        client.stream("sys.events", {"kinds": ["process.exited", "process.oom"]}) as items,
    ):
        await wait_for_subscribers(kernel.events, 1)
        kernel.events.publish(EventKind.PROCESS_SPAWNED, pid=1)
        kernel.events.publish(EventKind.PROCESS_OOM, pid=1, limit_bytes=1 << 20)
        kernel.events.publish(EventKind.PROCESS_EXITED, pid=1, exit_code=137)
        with trio.fail_after(5):
            first = await anext(items)
            second = await anext(items)
    assert (first["kind"], first["seq"], first["data"]) == (
        "process.oom",
        2,
        {"limit_bytes": 1 << 20},
    )
    assert (second["kind"], second["data"]) == ("process.exited", {"exit_code": 137})


async def test_closing_the_connection_ends_the_subscription(running_kernel):
    kernel = running_kernel.kernel
    async with (
        open_kernel_client(running_kernel.socket) as client,
        client.stream("sys.events") as items,
    ):
        await wait_for_subscribers(kernel.events, 1)
        kernel.events.publish(EventKind.PROCESS_SPAWNED, pid=1)
        with trio.fail_after(5):
            assert (await anext(items))["pid"] == 1
    await wait_for_subscribers(kernel.events, 0)  # the kernel saw the connection close


async def test_sys_events_refuses_unknown_kinds(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        with pytest.raises(SyscallError) as info:
            async with client.stream("sys.events", {"kinds": ["process.exploded"]}) as items:
                await anext(items)
    assert info.value.code == ErrorCode.EINVAL
    assert "args.kinds.0" in [d["loc"] for d in info.value.details]
    assert running_kernel.kernel.events.subscribers == 0


async def test_naming_another_process_on_a_process_socket_is_a_counted_denial(running_kernel):
    kernel = running_kernel.kernel
    mine = await dispatch(kernel, ADMIN, "proc.spawn", name="mine")
    other = await dispatch(kernel, ADMIN, "proc.spawn", name="other")
    caller = as_process(mine["pid"], Capability.SYSTEM_INFO)
    request = Request(id=1, call="proc.info", args={"pid": other["pid"]}, as_pid=other["pid"])
    async with kernel.events.subscribe(frozenset({EventKind.CALL_DENIED})) as events:
        with pytest.raises(SyscallPermissionError, match="alone"):
            await kernel.calls.dispatch(caller, request, no_emit)  # as on its own socket
        (event,) = drain(events)
    assert (event.pid, event.data["capability"]) == (mine["pid"], "ownership")
    text = kernel.metrics.render().decode()
    assert 'agentos_syscall_denials_total{call="proc.info",capability="ownership"} 1.0' in text
    assert 'agentos_syscalls_total{call="proc.info",outcome="EPERM"} 1.0' in text
