"""Kernel metrics: the registry, the call table's counting, and sys.metrics on a real socket."""

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from kernel.abi import (
    CATALOG,
    CallSpec,
    ErrorCode,
    Request,
    SyscallError,
    SyscallPermissionError,
)
from kernel.abi.events import EventKind
from kernel.abi.system import SYS_INFO, SYS_PING, NoArgs, SysPingResult
from kernel.calls import CallTable
from kernel.client import open_kernel_client
from kernel.core import Kernel
from kernel.events import EventBus
from kernel.metrics import KernelMetrics
from sandbox.capabilities import Capability
from tests.kernel._calls import ADMIN, as_process, dispatch, no_emit


def parse(text):
    """Every sample of an exposition, as {(name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape(kernel):
    return parse(kernel.metrics.render().decode())


def calls_with(samples, call):
    """The outcomes counted for ``call``."""
    return {
        dict(labels)["outcome"]: count
        for (name, labels), count in samples.items()
        if name == "agentos_syscalls_total" and dict(labels)["call"] == call
    }


# ------------------------------------------------------------------------ the registry


def test_metrics_render_the_prometheus_text_format():
    metrics = KernelMetrics()
    metrics.observe_call("sys.ping", "ok", 0.002)
    metrics.observe_call("sys.ping", "ok", 0.5)
    metrics.observe_call("proc.info", "ESRCH", 0.001)
    metrics.count_denial("sys.info", "system_info")
    metrics.count_dropped_events(3)
    samples = parse(metrics.render().decode())
    assert value(samples, "agentos_syscalls_total", call="sys.ping", outcome="ok") == 2
    assert value(samples, "agentos_syscalls_total", call="proc.info", outcome="ESRCH") == 1
    assert (
        value(samples, "agentos_syscall_denials_total", call="sys.info", capability="system_info")
        == 1
    )
    assert value(samples, "agentos_events_dropped_total") == 3
    assert value(samples, "agentos_syscall_seconds_count", call="sys.ping") == 2
    assert value(samples, "agentos_syscall_seconds_sum", call="sys.ping") == pytest.approx(0.502)
    assert value(samples, "agentos_syscall_seconds_bucket", call="sys.ping", le="0.0025") == 1
    assert value(samples, "agentos_syscall_seconds_bucket", call="sys.ping", le="1.0") == 2
    buckets = {
        dict(labels)["le"]
        for (name, labels) in samples
        if name == "agentos_syscall_seconds_bucket" and dict(labels)["call"] == "sys.ping"
    }
    assert {"1e-05", "10.0", "+Inf"} <= buckets
    assert metrics.content_type.startswith("text/plain")


def test_state_gauges_are_read_when_scraped_not_before():
    reads = []
    processes = {"running": 2}

    def read_processes():
        reads.append(1)
        return processes

    metrics = KernelMetrics(processes=read_processes, containers=lambda: {"stopped": 1})
    assert reads == []
    samples = parse(metrics.render().decode())
    assert value(samples, "agentos_processes", state="running") == 2
    assert value(samples, "agentos_containers", state="stopped") == 1
    processes = {"running": 1, "exited": 4}
    samples = parse(metrics.render().decode())
    assert value(samples, "agentos_processes", state="running") == 1
    assert value(samples, "agentos_processes", state="exited") == 4
    assert len(reads) == 2


def test_a_failing_gauge_source_hides_only_its_own_gauge(caplog):
    def broken():
        raise RuntimeError("no cgroup here")

    metrics = KernelMetrics(processes=lambda: {"running": 1}, containers=broken)
    metrics.observe_call("sys.ping", "ok", 0.001)
    samples = parse(metrics.render().decode())
    assert value(samples, "agentos_processes", state="running") == 1
    assert value(samples, "agentos_syscalls_total", call="sys.ping", outcome="ok") == 1
    assert not any(name == "agentos_containers" for name, _ in samples)
    assert "no cgroup here" in caplog.text


def test_two_registries_count_apart():
    first, second = KernelMetrics(), KernelMetrics()
    first.observe_call("sys.ping", "ok", 0.001)
    assert value(parse(first.render().decode()), "agentos_syscalls_total", call="sys.ping",
                 outcome="ok") == 1  # fmt: skip
    assert calls_with(parse(second.render().decode()), "sys.ping") == {}


# --------------------------------------------------------------- the call table counts


async def test_every_outcome_is_counted_by_call_and_code():
    kernel = Kernel()
    for _ in range(3):
        await dispatch(kernel, ADMIN, "sys.ping")
    with pytest.raises(SyscallError):
        await dispatch(kernel, ADMIN, "proc.info", pid=999)
    with pytest.raises(SyscallError):
        await dispatch(kernel, ADMIN, "proc.info", pid="x")
    samples = scrape(kernel)
    assert calls_with(samples, "sys.ping") == {"ok": 3}
    assert calls_with(samples, "proc.info") == {"ESRCH": 1, "EINVAL": 1}
    assert value(samples, "agentos_syscall_seconds_count", call="sys.ping") == 3
    assert value(samples, "agentos_syscall_seconds_count", call="proc.info") == 2


async def test_unknown_calls_share_one_label():
    kernel = Kernel()
    for name in ("no.such", "made.up.call", "another.one"):
        with pytest.raises(SyscallError) as info:
            await dispatch(kernel, ADMIN, name)
        assert info.value.code == ErrorCode.ENOSYS
    samples = scrape(kernel)
    assert calls_with(samples, "unknown") == {"ENOSYS": 3}
    calls = {dict(labels).get("call") for name, labels in samples if "syscall" in name}
    assert not calls & {"no.such", "made.up.call", "another.one"}


async def test_a_missing_capability_counts_as_a_denial():
    kernel = Kernel()
    with pytest.raises(SyscallPermissionError):
        await dispatch(kernel, as_process(5), "proc.list")
    samples = scrape(kernel)
    assert calls_with(samples, "proc.list") == {"EPERM": 1}
    assert (
        value(samples, "agentos_syscall_denials_total", call="proc.list", capability="system_info")
        == 1
    )


async def test_a_handler_refusing_the_caller_counts_as_an_ownership_denial():
    kernel = Kernel()
    mine = await dispatch(kernel, ADMIN, "proc.spawn", name="mine")
    other = await dispatch(kernel, ADMIN, "proc.spawn", name="other")
    caller = as_process(mine["pid"], Capability.KILL_PROCESS)
    with pytest.raises(SyscallPermissionError):
        await dispatch(kernel, caller, "proc.kill", pid=other["pid"])
    with pytest.raises(SyscallError):  # ESRCH is a failure, not a denial
        await dispatch(kernel, caller, "proc.kill", pid=12345)
    samples = scrape(kernel)
    assert calls_with(samples, "proc.kill") == {"EPERM": 1, "ESRCH": 1}
    denials = {
        dict(labels)["capability"]: count
        for (name, labels), count in samples.items()
        if name == "agentos_syscall_denials_total"
    }
    assert denials == {"ownership": 1}


async def test_a_crashing_handler_is_counted_as_eio():
    crash = CallSpec(name="test.crash", summary="", args=NoArgs, result=NoArgs, capability=None)

    async def crashes(ctx, args):
        raise RuntimeError("bug")

    kernel = Kernel(extra_calls=[(crash, crashes)])
    with pytest.raises(RuntimeError):
        await dispatch(kernel, ADMIN, "test.crash")
    assert calls_with(scrape(kernel), "test.crash") == {"EIO": 1}


class _Tick(NoArgs):
    pass


TICKS = CallSpec(
    name="test.ticks", summary="", args=NoArgs, result=NoArgs, capability=None, item=_Tick
)


async def ticks(ctx, args):
    while True:
        await ctx.emit(_Tick())
        await trio.sleep(0.02)


async def test_a_stream_is_timed_whole_and_counted_cancelled_when_its_peer_leaves():
    kernel = Kernel(extra_calls=[(TICKS, ticks)])
    items = []

    async def emit(item):
        items.append(item)
        if len(items) == 5:
            scope.cancel()

    with trio.CancelScope() as scope:
        await dispatch(kernel, ADMIN, "test.ticks", emit=emit)
    samples = scrape(kernel)
    assert calls_with(samples, "test.ticks") == {"cancelled": 1}
    assert value(samples, "agentos_syscall_seconds_count", call="test.ticks") == 1
    assert value(samples, "agentos_syscall_seconds_sum", call="test.ticks") >= 0.08


async def test_dropped_events_are_counted():
    kernel = Kernel()
    async with kernel.events.subscribe(buffer=2):
        for pid in range(1, 6):
            kernel.events.publish(EventKind.PROCESS_SPAWNED, pid=pid)
    assert value(scrape(kernel), "agentos_events_dropped_total") == 3


async def test_the_process_gauge_counts_live_processes_by_state():
    kernel = Kernel()
    for name in ("a", "b", "c"):
        await dispatch(kernel, ADMIN, "proc.spawn", name=name)
    assert value(scrape(kernel), "agentos_processes", state="running") == 3


async def test_a_table_without_metrics_or_events_still_dispatches():
    async def ping(ctx, args):
        return SysPingResult(data=args.data, kernel_time=0.0)

    table = CallTable(CATALOG)
    table.bind(SYS_PING, ping)
    table.bind(SYS_INFO, ping)
    result = await table.dispatch(as_process(5), Request(id=1, call="sys.ping"), no_emit)
    assert result["data"] == ""
    with pytest.raises(SyscallPermissionError):
        await table.dispatch(as_process(5), Request(id=2, call="sys.info"), no_emit)
    with pytest.raises(SyscallError):
        await table.dispatch(as_process(5), Request(id=3, call="no.such"), no_emit)


# ------------------------------------------------------------ sys.metrics on the socket


async def test_sys_metrics_shows_the_calls_just_made(running_kernel):
    kernel = running_kernel.kernel
    async with open_kernel_client(running_kernel.socket) as client:
        for _ in range(4):
            await client.call("sys.ping")
        await client.call("proc.spawn", {"name": "app"})
        for call, args in [("no.such", {}), ("sys.calls", {"category": "Not Valid"})]:
            with pytest.raises(SyscallError):
                await client.call(call, args)
        with pytest.raises(SyscallPermissionError):  # admin holds all: deny directly
            await dispatch(kernel, as_process(9), "sys.metrics")
        result = await client.call("sys.metrics")
    assert result["content_type"] == KernelMetrics.content_type
    samples = parse(result["text"])
    assert calls_with(samples, "sys.ping") == {"ok": 4}
    assert calls_with(samples, "proc.spawn") == {"ok": 1}
    assert calls_with(samples, "unknown") == {"ENOSYS": 1}
    assert calls_with(samples, "sys.calls") == {"EINVAL": 1}
    assert calls_with(samples, "sys.metrics") == {"EPERM": 1}  # this scrape is not in it yet
    assert (
        value(
            samples, "agentos_syscall_denials_total", call="sys.metrics", capability="system_info"
        )
        == 1
    )
    assert value(samples, "agentos_syscall_seconds_count", call="sys.ping") == 4
    assert value(samples, "agentos_syscall_seconds_bucket", call="sys.ping", le="+Inf") == 4
    assert value(samples, "agentos_processes", state="running") == 1


async def test_sys_metrics_needs_system_info():
    with pytest.raises(SyscallPermissionError, match="system_info"):
        await dispatch(Kernel(), as_process(3, Capability.SPAWN_PROCESS), "sys.metrics")


async def test_two_kernels_in_one_process_do_not_share_counters():
    first, second = Kernel(), Kernel()
    await dispatch(first, ADMIN, "sys.ping")
    await dispatch(first, ADMIN, "sys.ping")
    await dispatch(second, ADMIN, "sys.ping")
    assert calls_with(scrape(first), "sys.ping") == {"ok": 2}
    assert calls_with(scrape(second), "sys.ping") == {"ok": 1}
    assert first.events is not second.events
    assert isinstance(first.events, EventBus)
