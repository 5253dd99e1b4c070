"""Kernel processes in real runc containers: spawn, exit, kill, OOM, timeout, exec,
suspend, priority, signals, and who a call may act as."""

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
import trio

from kernel.abi import ErrorCode, SyscallError
from kernel.abi.events import EventKind
from kernel.client import DataLayout, open_kernel_client
from kernel.config import KernelSettings
from kernel.core import Kernel
from kernel.sched import priority_to_weight
from sandbox.cgroups import CgroupMode, weight_to_shares
from sandbox.policy import RuntimeName
from sandbox.runtime import open_runtime
from tests._support import RunningKernel, agentos_env, is_root

pytestmark = pytest.mark.skipif(not is_root(), reason="containers need root")

SLEEP = {"argv": ["sleep", "60"]}


@pytest.fixture
async def kernel(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        yield client


def runtime_of(running_kernel):
    runtime = running_kernel.kernel.supervisor.runtime
    assert runtime is not None, "the kernel found no sandbox runtime"
    return runtime


async def spawn(kernel, name="app", **args):
    return await kernel.call("proc.spawn", {"name": name, **args})


async def wait(kernel, pid, timeout=30):
    return await kernel.call("proc.wait", {"pid": pid, "timeout": timeout})


async def test_a_command_runs_in_a_container_of_its_own_and_its_exit_is_recorded(
    kernel, running_kernel
):
    info = await spawn(kernel, command={"argv": ["sh", "-c", "exit 3"]})
    assert info["policy"] == "standard"
    assert info["container"]["runtime"] == "runc"
    assert info["container"]["uid"] >= 1_000_000
    final = await wait(kernel, info["pid"])
    assert (final["state"], final["exit_reason"], final["exit_code"]) == ("exited", "exited", 3)
    runtime = runtime_of(running_kernel)
    assert await runtime.list_ids() == []  # the container went with its process
    assert list(runtime.bundles.iterdir()) == []
    sockets = running_kernel.settings.layout.kernel_dir / "procs"
    assert not (sockets / f"{info['pid']}.sock").exists()


async def test_kill_ends_the_container_and_the_children_but_not_detached_ones(
    kernel, running_kernel
):
    async with running_kernel.kernel.events.subscribe() as events:
        parent = await spawn(kernel, command=SLEEP)
        await kernel.call("proc.kill", {"pid": parent["pid"]})
        seen = [await events.receive() for _ in range(2)]
    assert [(e.kind, e.pid) for e in seen] == [
        ("process.spawned", parent["pid"]), ("process.killed", parent["pid"])
    ]  # fmt: skip
    parent = await spawn(kernel, command=SLEEP)
    child = await spawn(kernel, "child", parent=parent["pid"], command=SLEEP)
    detached = await spawn(kernel, "daemon", parent=parent["pid"], detached=True)
    final = await kernel.call("proc.kill", {"pid": parent["pid"]})
    assert (final["exit_reason"], final["term_signal"]) == ("killed", signal.SIGKILL)
    assert not Path(f"/proc/{parent['container']['os_pid']}").exists()
    assert (await kernel.call("proc.state", {"pid": child["pid"]}))["exit_reason"] == "killed"
    assert not Path(f"/proc/{child['container']['os_pid']}").exists()
    survivor = await kernel.call("proc.info", {"pid": detached["pid"]})
    assert (survivor["state"], survivor["ppid"]) == ("running", 0)


async def test_an_oom_kill_is_read_from_the_cgroup(kernel):
    hog = "x = bytearray(256 << 20)"
    info = await spawn(
        kernel, command={"argv": ["python3", "-c", hog]}, limits={"memory": 32 << 20}
    )
    final = await wait(kernel, info["pid"])
    assert final["exit_reason"] == "oom"
    assert final["term_signal"] == signal.SIGKILL


async def test_the_policy_time_limit_ends_it(kernel):
    info = await spawn(kernel, command=SLEEP, limits={"timeout": 1})
    with trio.fail_after(15):
        final = await wait(kernel, info["pid"])
    assert final["exit_reason"] == "timeout"


async def test_spawn_never_grants_more_than_the_policy_and_the_caller(kernel):
    with pytest.raises(SyscallError) as beyond_policy:
        await spawn(kernel, command=SLEEP, capabilities=["kill_process"])
    with pytest.raises(SyscallError) as above_limit:
        await spawn(kernel, command=SLEEP, limits={"memory": 1 << 40})
    with pytest.raises(SyscallError) as unknown:
        await spawn(kernel, command=SLEEP, policy="nosuch")
    codes = [e.value.code for e in (beyond_policy, above_limit, unknown)]
    assert codes == [ErrorCode.EPERM, ErrorCode.EPERM, ErrorCode.ENOENT]
    weak = await spawn(kernel, "weak", capabilities=["spawn_process"])
    with pytest.raises(SyscallError) as escalation:
        await kernel.call(
            "proc.spawn", {"name": "x", "capabilities": ["kill_process"]}, as_pid=weak["pid"]
        )
    assert escalation.value.code == ErrorCode.EPERM


async def exec_in(kernel, pid, argv, **args):
    out, err = bytearray(), bytearray()
    async with kernel.stream("proc.exec", {"pid": pid, "command": {"argv": argv}, **args}) as s:
        async for item in s:
            (out if item["stream"] == "stdout" else err).extend(item["data"])
        result = s.result
    return result, bytes(out), bytes(err)


async def read_output(kernel, pid, as_pid=None, **args):
    async with kernel.stream("proc.output", {"pid": pid, **args}, as_pid=as_pid) as stream:
        items = [(item["seq"], item["stream"], item["data"]) async for item in stream]
    return items, stream.result


async def test_a_commands_output_is_kept_and_can_be_followed_to_its_end(kernel):
    script = "echo hello; echo oops >&2; sleep 30; echo later"
    info = await spawn(kernel, command={"argv": ["sh", "-c", script]})
    pid = info["pid"]
    with trio.fail_after(10):
        while len((await read_output(kernel, pid))[0]) < 2:
            await trio.sleep(0.05)
    items, result = await read_output(kernel, pid)
    assert sorted((stream, data) for _, stream, data in items) == [
        ("stderr", b"oops\n"), ("stdout", b"hello\n")
    ]  # fmt: skip
    assert (result["ended"], result["evicted_bytes"]) == (False, 0)
    seen = result["last_seq"]
    assert (await read_output(kernel, pid, after=seen))[0] == []
    async with trio.open_nursery() as nursery:
        followed = {}

        async def follow():
            followed["items"], followed["result"] = await read_output(
                kernel, pid, after=seen, follow=True
            )

        nursery.start_soon(follow)
        await trio.sleep(0.2)  # following, with nothing new yet
        assert "items" not in followed
        await kernel.call("signal.send", {"pid": pid, "signal": "SIGHUP"})  # ends the read
    assert [data for _, _, data in followed["items"]] == []  # killed by SIGHUP: no "later"
    assert followed["result"]["ended"] is True
    final = await wait(kernel, pid)
    assert final["term_signal"] == signal.SIGHUP
    again, _ = await read_output(kernel, pid)  # still there once it has exited
    assert sorted(data for _, _, data in again) == [b"hello\n", b"oops\n"]
    bare = await spawn(kernel, "bare", capabilities=["system_info"])
    with pytest.raises(SyscallError) as no_command:
        await read_output(kernel, bare["pid"])
    assert no_command.value.code == ErrorCode.EINVAL
    with pytest.raises(SyscallError) as not_its_own:
        await read_output(kernel, pid, as_pid=bare["pid"])
    assert not_its_own.value.code == ErrorCode.EPERM


async def test_exec_streams_both_outputs_takes_stdin_and_has_a_time_limit(kernel):
    info = await spawn(kernel, command=SLEEP)
    result, out, err = await exec_in(
        kernel, info["pid"], ["sh", "-c", "cat; echo oops >&2; exit 4"], stdin=b"abc"
    )
    assert (result["exit_code"], out, err) == (4, b"abc", b"oops\n")
    with trio.fail_after(20):
        result, _, _ = await exec_in(kernel, info["pid"], ["sleep", "30"], timeout=1)
    assert result["timed_out"]
    await kernel.call("proc.kill", {"pid": info["pid"]})


async def test_exec_output_past_the_policys_cap_is_dropped_and_counted(kernel):
    info = await spawn(kernel, command=SLEEP, policy="minimal")  # output cap: 1 MiB
    result, out, err = await exec_in(
        kernel, info["pid"], ["sh", "-c", "head -c 3000000 /dev/zero; echo late >&2"]
    )
    assert (result["exit_code"], len(out), err) == (0, 1 << 20, b"")
    assert result["dropped_bytes"] == 3_000_000 - (1 << 20) + len(b"late\n")
    await kernel.call("proc.kill", {"pid": info["pid"]})


async def test_an_exec_that_ignores_sigterm_ends_with_its_time_limit(kernel, running_kernel):
    info = await spawn(kernel, command=SLEEP)
    stubborn = ["sh", "-c", "trap '' TERM; sleep 303; :"]
    with trio.fail_after(20):
        result, _, _ = await exec_in(kernel, info["pid"], stubborn, timeout=0.5)
    assert result["timed_out"]
    runtime = runtime_of(running_kernel)
    cgroup = runtime.cgroups.cgroup(runtime.cgroup_of(info["container"]["id"]))
    assert not [pid for pid in cgroup.pids() if b"303" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    with trio.fail_after(20):
        final = await kernel.call("proc.kill", {"pid": info["pid"]})
    assert final["exit_reason"] == "killed"
    assert await runtime_of(running_kernel).list_ids() == []


async def test_suspend_freezes_the_container_and_resume_thaws_it(kernel, running_kernel):
    info = await spawn(kernel, command=SLEEP)
    cgroup = running_kernel.kernel.processes.get(info["pid"]).container.cgroup
    suspended = await kernel.call("proc.suspend", {"pid": info["pid"]})
    assert suspended["state"] == "suspended"
    assert cgroup.is_frozen()
    resumed = await kernel.call("proc.resume", {"pid": info["pid"]})
    assert resumed["state"] == "running"
    assert not cgroup.is_frozen()
    await kernel.call("proc.suspend", {"pid": info["pid"]})
    final = await kernel.call("proc.kill", {"pid": info["pid"]})  # frozen, yet it dies
    assert final["exit_reason"] == "killed"


async def test_suspends_and_resumes_racing_leave_state_and_freezer_agreeing(kernel, running_kernel):
    info = await spawn(kernel, command=SLEEP)
    cgroup = running_kernel.kernel.processes.get(info["pid"]).container.cgroup

    async def attempt(call):
        with contextlib.suppress(SyscallError):  # the loser of a race is refused
            await kernel.call(call, {"pid": info["pid"]})

    for _ in range(8):
        async with trio.open_nursery() as nursery:
            for call in ("proc.suspend", "proc.resume", "proc.suspend", "proc.resume"):
                nursery.start_soon(attempt, call)
        state = (await kernel.call("proc.state", {"pid": info["pid"]}))["state"]
        assert (state == "suspended") == cgroup.is_frozen(), state
    final = await kernel.call("proc.kill", {"pid": info["pid"]})
    assert final["exit_reason"] == "killed"


async def test_calls_racing_a_containers_end_get_typed_errors(kernel):
    seen = set()
    for round_ in range(6):
        info = await spawn(kernel, command=SLEEP)
        pid = info["pid"]
        calls = [
            ("proc.stats", {"pid": pid}), ("proc.suspend", {"pid": pid}),
            ("proc.resume", {"pid": pid}), ("proc.set_priority", {"pid": pid, "priority": 5}),
            ("signal.send", {"pid": pid, "signal": "SIGWINCH"}),  # ignored: only kill ends it
            ("proc.exec", {"pid": pid, "command": {"argv": ["true"]}}),
        ]  # fmt: skip

        async def hammer(call, args):
            for _ in range(20):
                try:
                    if call == "proc.exec":
                        async with kernel.stream(call, args) as stream:
                            async for _item in stream:
                                pass
                    else:
                        await kernel.call(call, args)
                except SyscallError as exc:
                    seen.add((call, exc.code, exc.message))
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            for call, args in calls:
                nursery.start_soon(hammer, call, args)
            await trio.sleep(0.02 * round_)
            await kernel.call("proc.kill", {"pid": pid})
    internal = [entry for entry in seen if entry[1] is ErrorCode.EIO]
    assert internal == []
    assert {code for _, code, _ in seen} <= {ErrorCode.ESRCH, ErrorCode.EBUSY, ErrorCode.EINVAL}


async def test_stop_continue_and_kill_signals_act_on_the_whole_container(kernel, running_kernel):
    info = await spawn(kernel, command=SLEEP)
    cgroup = running_kernel.kernel.processes.get(info["pid"]).container.cgroup
    stopped = await kernel.call("signal.send", {"pid": info["pid"], "signal": "SIGSTOP"})
    assert stopped["state"] == "suspended"
    assert cgroup.is_frozen()  # the command too, not only the sandbox's init
    continued = await kernel.call("signal.send", {"pid": info["pid"], "signal": "SIGCONT"})
    assert continued["state"] == "running"
    assert not cgroup.is_frozen()
    killed = await kernel.call("signal.send", {"pid": info["pid"], "signal": "SIGKILL"})
    assert (killed["state"], killed["exit_reason"]) == ("exited", "killed")
    assert await runtime_of(running_kernel).list_ids() == []


async def test_priority_becomes_the_containers_cpu_weight(kernel, running_kernel):
    info = await spawn(kernel, command=SLEEP)
    process = running_kernel.kernel.processes.get(info["pid"])
    await kernel.call("proc.set_priority", {"pid": info["pid"], "priority": 10})
    layout = runtime_of(running_kernel).cgroups.layout
    name = process.container.cgroup.name
    if layout.mode is CgroupMode.V2:
        value = int((layout.unified / name / "cpu.weight").read_text())
        assert value == priority_to_weight(10)
    else:
        value = int((layout.v1["cpu"] / name / "cpu.shares").read_text())
        assert value == weight_to_shares(priority_to_weight(10))
    assert priority_to_weight(10) < priority_to_weight(0) == 100 < priority_to_weight(-10)
    await kernel.call("proc.kill", {"pid": info["pid"]})


SPIN = """
import os, threading
os.sched_setaffinity(0, {0})  # both apps on one CPU: it is contended
def spin():
    while True: pass
threading.Thread(target=spin).start()
spin()
"""
BUSY = {"argv": ["python3", "-c", SPIN]}  # two busy threads


async def cpu_shares(kernel, pids, seconds=3.0):
    """Each pid's share of the CPU time all of them used over ``seconds``."""

    async def usage():
        stats = (await kernel.call("sched.stats"))["processes"]
        return {e["pid"]: e["cpu_usage_us"] for e in stats if e["pid"] in pids}

    before = await usage()
    await trio.sleep(seconds)
    after = await usage()
    used = {pid: after[pid] - before[pid] for pid in pids}
    total = sum(used.values())
    return {pid: used[pid] / total for pid in pids}


def cpu_quota(running_kernel, process):
    """The CPUs a container's cgroup lets it use, read from the cgroup itself."""
    layout = runtime_of(running_kernel).cgroups.layout
    name = process.container.cgroup.name
    if layout.mode is CgroupMode.V2:
        quota, period = (layout.unified / name / "cpu.max").read_text().split()
    else:
        directory = layout.v1["cpu"] / name
        quota = (directory / "cpu.cfs_quota_us").read_text()
        period = (directory / "cpu.cfs_period_us").read_text()
    return int(quota) / int(period)


async def test_containers_share_the_cpu_as_the_policy_says(kernel, running_kernel):
    # Both on one CPU, two busy threads each: only the weights decide who gets it.
    low = await spawn(kernel, "low", command=BUSY)
    high = await spawn(kernel, "high", command=BUSY)
    pids = [low["pid"], high["pid"]]
    try:
        await kernel.call("proc.set_priority", {"pid": high["pid"], "priority": -5})  # 3.05x
        shares = await cpu_shares(kernel, pids)
        ratio = shares[high["pid"]] / shares[low["pid"]]
        assert 2.0 < ratio < 4.5, shares  # weights 305 : 100
        await kernel.call("sched.set_policy", {"policy": "fair"})  # priorities no longer count
        shares = await cpu_shares(kernel, pids)
        assert 0.7 < shares[high["pid"]] / shares[low["pid"]] < 1.4, shares
        await kernel.call("sched.focus", {"pid": low["pid"]})  # the focused app: 4x
        shares = await cpu_shares(kernel, pids)
        assert 2.5 < shares[low["pid"]] / shares[high["pid"]] < 6.0, shares
        state = await kernel.call("sched.background", {"pid": high["pid"], "background": True})
        assert state == {
            "policy": "fair",
            "focused_pid": low["pid"],
            "background_pids": [high["pid"]],
            "turn_pid": None,
        }
        entry = {e["pid"]: e for e in (await kernel.call("sched.stats"))["processes"]}
        assert (entry[high["pid"]]["weight"], entry[high["pid"]]["cpu_max"]) == (10, 0.1)
        await kernel.call("sched.background", {"pid": high["pid"], "background": False})
        third = await spawn(kernel, "third", command=SLEEP)
        pids.append(third["pid"])
        await kernel.call("sched.set_policy", {"policy": "round_robin"})
        cpus = (await kernel.call("sched.stats"))["cpus"]
        share = min(1.0, cpus / 3)  # the standard policy's 1 CPU, or the CPUs over three
        for pid in pids:
            quota = cpu_quota(running_kernel, running_kernel.kernel.processes.get(pid))
            assert quota == pytest.approx(share, abs=0.01)
    finally:
        await kernel.call("sched.set_policy", {"policy": "priority"})
        for pid in pids:
            await kernel.call("proc.kill", {"pid": pid})


def cpu_weight(running_kernel, pid):
    """A process's container's cpu weight, read from its cgroup (v1: as shares)."""
    layout = runtime_of(running_kernel).cgroups.layout
    name = running_kernel.kernel.processes.get(pid).container.cgroup.name
    if layout.mode is CgroupMode.V2:
        return int((layout.unified / name / "cpu.weight").read_text())
    return int((layout.v1["cpu"] / name / "cpu.shares").read_text())


def as_cgroup_weight(running_kernel, weight):
    layout = runtime_of(running_kernel).cgroups.layout
    return weight if layout.mode is CgroupMode.V2 else weight_to_shares(weight)


async def test_the_turn_passes_in_the_policys_order(kernel, running_kernel):
    infos = [await spawn(kernel, name, command=SLEEP) for name in ("a", "b", "c")]
    a, b, c = (info["pid"] for info in infos)
    busy = (await spawn(kernel, "busy", command=BUSY))["pid"]
    try:
        await kernel.call("proc.set_priority", {"pid": b, "priority": -5})
        for _ in range(2):  # priority: the highest, as long as it is
            assert (await kernel.call("sched.next"))["pid"] == b
        assert cpu_weight(running_kernel, b) == as_cgroup_weight(
            running_kernel, 4 * priority_to_weight(-5)
        )
        await kernel.call("sched.set_policy", {"policy": "round_robin"})
        await kernel.call("proc.suspend", {"pid": c})  # not running: skipped
        turns = [(await kernel.call("sched.next"))["pid"] for _ in range(4)]
        assert turns == [busy, a, b, busy]
        assert cpu_weight(running_kernel, busy) == as_cgroup_weight(running_kernel, 400)
        assert cpu_weight(running_kernel, b) == as_cgroup_weight(running_kernel, 100)
        current = await kernel.call("sched.current")
        assert current["turn_pid"] == busy
        assert (await kernel.call("sched.get_policy"))["turn_pid"] == busy
        entries = {e["pid"]: e for e in (await kernel.call("sched.stats"))["processes"]}
        assert entries[busy]["turn"]
        assert not entries[a]["turn"]
        await kernel.call("sched.set_policy", {"policy": "fair"})
        await trio.sleep(0.5)  # the busy one has used far more CPU than the sleepers
        for _ in range(3):
            assert (await kernel.call("sched.next"))["pid"] in {a, b}
    finally:
        await kernel.call("sched.set_policy", {"policy": "priority"})
        for pid in (a, b, c, busy):
            await kernel.call("proc.kill", {"pid": pid})
    assert (await kernel.call("sched.get_policy"))["turn_pid"] is None


async def test_who_is_on_a_cpu_is_read_from_the_tasks(kernel):
    busy = (await spawn(kernel, "busy", command=BUSY))["pid"]
    idle = (await spawn(kernel, "idle", command=SLEEP))["pid"]
    seen = set()
    await trio.sleep(0.5)  # past the idle one's start, when its tasks did run
    try:
        for _ in range(20):
            seen.update((await kernel.call("sched.current"))["on_cpu"])
            await trio.sleep(0.01)
    finally:
        for pid in (busy, idle):
            await kernel.call("proc.kill", {"pid": pid})
    assert busy in seen
    assert idle not in seen


async def test_a_yield_gives_the_cpu_to_the_others_while_it_lasts(kernel, running_kernel):
    # Both on one CPU, two busy threads each: while one yields, the other has nearly all.
    yielder = (await spawn(kernel, "yielder", command=BUSY))["pid"]
    other = (await spawn(kernel, "other", command=BUSY))["pid"]
    result = {}
    try:
        async with trio.open_nursery() as nursery:

            async def yield_():
                result.update(await kernel.call("sched.yield", {"seconds": 2.5}, as_pid=yielder))

            nursery.start_soon(yield_)
            await trio.sleep(0.3)
            assert cpu_weight(running_kernel, yielder) == as_cgroup_weight(running_kernel, 1)
            entries = {e["pid"]: e for e in (await kernel.call("sched.stats"))["processes"]}
            assert entries[yielder]["yielding"]
            shares = await cpu_shares(kernel, [yielder, other], seconds=1.5)
            assert shares[yielder] < 0.1, shares  # weights 1 : 100
        assert result["pid"] == yielder
        assert result["yielded_seconds"] >= 2.5
        assert result["weight"] == 100
        assert cpu_weight(running_kernel, yielder) == as_cgroup_weight(running_kernel, 100)
    finally:
        for pid in (yielder, other):
            await kernel.call("proc.kill", {"pid": pid})


async def test_an_administrators_policy_reaches_new_containers_and_outlives_restarts(
    running_kernel,
):
    small = {"name": "small", "limits": {"memory": "48M", "pids": 9}}
    async with open_kernel_client(running_kernel.socket) as kernel:
        await kernel.call("policy.put", {"policy": small})
        info = await spawn(kernel, command=SLEEP, policy="small")
        stats = await kernel.call("proc.stats", {"pid": info["pid"]})
        assert stats["memory_limit_bytes"] == 48 << 20
        await kernel.call("proc.kill", {"pid": info["pid"]})
    await running_kernel.stop()
    await running_kernel.start()
    async with open_kernel_client(running_kernel.socket) as kernel:
        entry = await kernel.call("policy.get", {"name": "small"})
        assert (entry["builtin"], entry["policy"]["limits"]["pids"]) == (False, 9)


async def test_a_signal_reaches_the_command(kernel):
    info = await spawn(kernel, command=SLEEP)
    stats = await kernel.call("proc.stats", {"pid": info["pid"]})
    assert stats["pids_current"] >= 1
    assert stats["memory_limit_bytes"] == 256 << 20
    await kernel.call("signal.send", {"pid": info["pid"], "signal": "SIGTERM"})
    final = await wait(kernel, info["pid"])
    assert (final["exit_reason"], final["term_signal"]) == ("exited", signal.SIGTERM)


INSIDE = r"""
import json, agentos_kernel
results = {}
with agentos_kernel.connect() as k:
    results["me"] = k.call("proc.info", pid=k.pid)["pid"]
    results["env"] = k.call("sys.env_set", name="MODE", value="fast")["env"]["MODE"]
    for name, call, args in [
        ("other_stats", "proc.stats", {"pid": OTHER}),
        ("kill", "proc.kill", {"pid": OTHER}),
    ]:
        try:
            k.call(call, args)
            results[name] = "ok"
        except agentos_kernel.KernelError as exc:
            results[name] = exc.code
    k._sock.sendall(b"")  # as_pid naming another process on this socket:
    body = agentos_kernel.msgpack.packb(
        {"id": 99, "call": "proc.info", "args": {"pid": OTHER}, "as_pid": OTHER}
    )
    k._sock.sendall(agentos_kernel._HEADER.pack(len(body)) + body)
    reply = k._receive(99)
    results["as_other"] = reply["error"]["code"]
print(json.dumps(results))
"""


async def test_the_process_socket_acts_as_that_process_alone(kernel, running_kernel):
    other = await spawn(kernel, "other")
    info = await spawn(kernel, command=SLEEP)
    code = INSIDE.replace("OTHER", str(other["pid"]))
    result, out, err = await exec_in(kernel, info["pid"], ["python3", "-c", code])
    assert result["exit_code"] == 0, err
    seen = json.loads(out)
    assert seen == {
        "me": info["pid"], "env": "fast", "other_stats": "EPERM", "kill": "EPERM",
        "as_other": "EPERM",
    }  # fmt: skip
    # Nobody but the sandbox's uid is served there, not even root.
    path = running_kernel.settings.layout.kernel_dir / "procs" / f"{info['pid']}.sock"
    async with open_kernel_client(path) as stranger:
        with pytest.raises(SyscallError) as refused:
            await stranger.call("sys.ping")
    assert refused.value.code == ErrorCode.EPERM
    await kernel.call("proc.kill", {"pid": info["pid"]})


CROWD = r"""
import time, agentos_kernel
held, refused = [], 0
for _ in range(70):
    client = agentos_kernel.connect()
    try:
        client.call("sys.ping")
        held.append(client)
    except agentos_kernel.KernelError as exc:
        assert exc.code == "EAGAIN", exc.code
        refused += 1
        client.close()
held.pop().close()
for attempt in range(100):  # a freed place is a place again, once the kernel sees it
    again = agentos_kernel.connect()
    try:
        again.call("sys.ping")
        break
    except agentos_kernel.KernelError:
        again.close()
        time.sleep(0.05)
print(len(held) + 1, refused)
"""


async def test_a_process_cannot_hold_more_than_64_connections_to_its_socket(kernel):
    info = await spawn(kernel, command=SLEEP)
    result, out, err = await exec_in(kernel, info["pid"], ["python3", "-c", CROWD])
    assert (result["exit_code"], out, err) == (0, b"64 6\n", b"")
    assert await kernel.call("sys.ping")  # the admin socket is not affected
    await kernel.call("proc.kill", {"pid": info["pid"]})


LEAVER = r"""
import threading, agentos_kernel


def deny():  # an event for the stream, once it is subscribed
    with agentos_kernel.connect() as other:
        try:
            other.call("proc.kill", pid=other.pid)
        except agentos_kernel.KernelError:
            pass


with agentos_kernel.connect() as k:
    events = k.stream("sys.events")
    threading.Timer(0.5, deny).start()
    first = next(events)
    events.close()  # left early: cancelled in the kernel, and the connection goes on
    print(first["kind"], k.call("sys.ping", data="on")["data"])
"""


async def test_streams_left_early_are_cancelled_in_the_kernel(kernel, running_kernel):
    info = await spawn(kernel, command=SLEEP)
    result, out, err = await exec_in(kernel, info["pid"], ["python3", "-c", LEAVER])
    assert (result["exit_code"], out, err) == (0, b"call.denied on\n", b"")
    assert running_kernel.kernel.events.subscribers == 0
    async with kernel.stream(
        "proc.exec", {"pid": info["pid"], "command": {"argv": ["sleep", "304"]}}
    ):
        pass  # the admin client leaves at once too
    runtime = runtime_of(running_kernel)
    cgroup = runtime.cgroups.cgroup(runtime.cgroup_of(info["container"]["id"]))
    with trio.fail_after(10):
        while [p for p in cgroup.pids() if b"304" in Path(f"/proc/{p}/cmdline").read_bytes()]:
            await trio.sleep(0.05)
    await kernel.call("proc.kill", {"pid": info["pid"]})


MAPPER = r"""
import agentos_kernel
with agentos_kernel.connect() as k:
    pages = k.attach_shm(SHM)
    seen = bytes(pages[:12])
    pages[100:111] = b"from inside"
    pages.close()
print(seen.decode())
"""


async def test_a_sandboxed_process_maps_a_segments_pages(kernel):
    info = await spawn(kernel, command=SLEEP)
    shm = (await kernel.call("shm.create", {"size": 4096}, as_pid=info["pid"]))["shm_id"]
    await kernel.call("shm.write", {"shm_id": shm, "data": b"from outside"})
    code = MAPPER.replace("SHM", str(shm))
    result, out, err = await exec_in(kernel, info["pid"], ["python3", "-c", code])
    assert (result["exit_code"], out, err) == (0, b"from outside\n", b"")
    inside = await kernel.call("shm.read", {"shm_id": shm, "offset": 100, "size": 11})
    assert inside["data"] == b"from inside"  # written through the mapping, not a call
    await kernel.call("proc.kill", {"pid": info["pid"]})
    assert (await kernel.call("shm.stats"))["segments"] == []


async def test_the_admin_acts_for_a_process_with_its_authority_alone(kernel):
    process = await spawn(kernel, "viewer", capabilities=["system_info"])
    target = await spawn(kernel, "target")
    info = await kernel.call("proc.info", {"pid": target["pid"]}, as_pid=process["pid"])
    assert info["pid"] == target["pid"]
    with pytest.raises(SyscallError) as denied:
        await kernel.call("proc.kill", {"pid": target["pid"]}, as_pid=process["pid"])
    with pytest.raises(SyscallError) as missing:
        await kernel.call("sys.ping", as_pid=9999)
    assert (denied.value.code, missing.value.code) == (ErrorCode.EPERM, ErrorCode.ESRCH)


async def test_stopping_the_kernel_ends_every_container(running_kernel):
    async with open_kernel_client(running_kernel.socket) as kernel:
        info = await spawn(kernel, command=SLEEP)
    runtime = runtime_of(running_kernel)
    await running_kernel.stop()
    assert not Path(f"/proc/{info['container']['os_pid']}").exists()
    assert await runtime.list_ids() == []
    assert runtime.cgroups.children(runtime.cgroup_parent) == []
    assert os.listdir(running_kernel.settings.layout.kernel_dir / "procs") == ["python"]


def alive(pid):
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


async def test_a_kernel_killed_with_its_containers_running_leaves_nothing_to_the_next(
    spawn_agentos, data_dir
):
    async def start():
        kernel = await spawn_agentos("kernel", env=agentos_env(data_dir))
        await kernel.wait_for_output(r"kernel \S+ serving on", stderr=True)
        return kernel

    first = await start()
    socket_path = DataLayout(data_dir).admin_socket
    async with open_kernel_client(socket_path) as kernel:
        info = await spawn(kernel, command=SLEEP)
    os_pid = info["container"]["os_pid"]
    await first.stop(signal.SIGKILL)
    assert alive(os_pid)  # the container outlives the kernel that made it
    second = await start()
    assert not alive(os_pid)
    # Orphaned by the killed kernel, its init was adopted by the nearest subreaper: this
    # test process, if an OCI runtime made it one. Reap it, as a real init would.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(os_pid, 0)  # noqa: ASYNC222 - it has exited: no wait
    assert "removed 1 container(s) a previous kernel left" in second.stderr.decode()
    async with open_kernel_client(socket_path) as kernel:
        assert (await kernel.call("proc.list"))["processes"] == []
    runtime_dir = data_dir / "kernel" / "sandboxes" / "runc"
    assert list((runtime_dir / "bundles").iterdir()) == []
    await second.stop()
    successor = open_runtime(RuntimeName.RUNC, data_dir / "kernel" / "sandboxes")
    assert successor.cgroups.children(successor.cgroup_parent) == []


async def test_a_leftover_that_cannot_be_removed_does_not_keep_the_kernel_down(
    spawn_agentos, data_dir
):
    stuck = data_dir / "kernel" / "sandboxes" / "runc" / "bundles" / "sb-stuck"
    stuck.mkdir(parents=True)
    (stuck / "pinned").touch()
    await trio.run_process(["chattr", "+i", str(stuck / "pinned")])  # even root cannot rm
    try:
        kernel = await spawn_agentos("kernel", env=agentos_env(data_dir))
        await kernel.wait_for_output(r"kernel \S+ serving on", stderr=True)
        assert "could not remove every container a previous kernel left" in kernel.stderr.decode()
        async with open_kernel_client(DataLayout(data_dir).admin_socket) as client:
            info = await spawn(client, command={"argv": ["true"]})
            assert (await wait(client, info["pid"]))["exit_code"] == 0
        await kernel.stop()
    finally:
        await trio.run_process(["chattr", "-i", str(stuck / "pinned")])


async def test_containers_memory_limits_stay_within_the_budget(nursery, data_dir):
    budget_kernel = RunningKernel(
        nursery, KernelSettings(data_dir=data_dir), Kernel(memory_budget=300 << 20)
    )
    await budget_kernel.start()
    async with open_kernel_client(budget_kernel.socket) as kernel:
        first = await spawn(kernel, command=SLEEP)  # standard: 256 MiB of 300
        assert (await kernel.call("mem.stats"))["committed_bytes"] == 256 << 20
        with pytest.raises(SyscallError) as refused:
            await spawn(kernel, command=SLEEP)
        assert refused.value.code == ErrorCode.ENOMEM
        small = await spawn(kernel, command=SLEEP, limits={"memory": 32 << 20})  # fits
        await kernel.call("proc.kill", {"pid": first["pid"]})
        again = await spawn(kernel, command=SLEEP)
        for process in (small, again):
            await kernel.call("proc.kill", {"pid": process["pid"]})


async def test_a_kernel_without_a_usable_runtime_serves_and_says_why(spawn_agentos, data_dir):
    env = {**agentos_env(data_dir), "AGENTOS_DOCKER_URL": f"unix://{data_dir}/none.sock"}
    kernel = await spawn_agentos("kernel", "--runtime", "docker", env=env)
    await kernel.wait_for_output(r"kernel \S+ serving on", stderr=True)
    assert "processes cannot run commands" in kernel.stderr.decode()
    async with open_kernel_client(DataLayout(data_dir).admin_socket) as client:
        with pytest.raises(SyscallError) as refused:
            await spawn(client, command=SLEEP)
        assert refused.value.code == ErrorCode.EAGAIN
        assert "docker" in refused.value.message.lower()
        failed = (await client.call("proc.list"))["processes"]
        assert failed == []  # the attempt left no live entry
        assert (await spawn(client, "ui-only"))["container"] is None


async def test_a_limit_the_cgroup_refuses_at_is_published(kernel, running_kernel):
    forks = "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; sleep 30"
    async with running_kernel.kernel.events.subscribe(
        frozenset({EventKind.LIMIT_REACHED})
    ) as events:
        info = await spawn(kernel, command={"argv": ["sh", "-c", forks]}, limits={"pids": 4})
        with trio.fail_after(15):
            event = await events.receive()
    assert (event.pid, event.data["limit"]) == (info["pid"], "pids")
    assert event.data["count"] >= 1
    await kernel.call("proc.kill", {"pid": info["pid"]})


async def kill_or_state(kernel, pid):
    """Kill ``pid``; if it ended meanwhile (ESRCH), how it ended."""
    try:
        return await kernel.call("proc.kill", {"pid": pid})
    except SyscallError as exc:
        if exc.code != ErrorCode.ESRCH:
            raise
    return await kernel.call("proc.state", {"pid": pid})


async def test_a_spawn_whose_caller_leaves_midway_leaves_nothing_untracked(kernel, running_kernel):
    runtime = runtime_of(running_kernel)
    for delay in (0.01, 0.03, 0.1, 0.3):
        async with open_kernel_client(running_kernel.socket) as leaver:
            with trio.move_on_after(delay):
                await spawn(leaver, "leaver", command=SLEEP)
        # Closing the connection cancelled the call wherever it was: either the process
        # was made (and runs, tracked) or nothing of it is left.
        with trio.fail_after(30):
            while True:
                live = (await kernel.call("proc.list"))["processes"]
                tracked = {p["container"]["id"] for p in live if p["container"]}
                if set(await runtime.list_ids()) == tracked:
                    break
                await trio.sleep(0.05)
        for process in live:
            final = await kill_or_state(kernel, process["pid"])
            assert final["exit_reason"] in ("failed", "killed")
    assert await runtime.list_ids() == []
    assert list(runtime.bundles.iterdir()) == []
    assert os.listdir(running_kernel.settings.layout.kernel_dir / "procs") == ["python"]


async def test_ending_a_parent_while_its_child_starts_leaves_nothing_behind(kernel, running_kernel):
    runtime = runtime_of(running_kernel)
    for delay in (0, 0.02, 0.05, 0.1, 0.2):
        parent = await spawn(kernel, command=SLEEP)
        outcome = {}

        async def child(parent=parent, outcome=outcome):
            try:
                outcome["child"] = await spawn(kernel, "child", parent=parent["pid"], command=SLEEP)
            except SyscallError as exc:
                outcome["error"] = exc.code

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(child)
                await trio.sleep(delay)
                final = await kernel.call("proc.kill", {"pid": parent["pid"]})
        assert final["exit_reason"] == "killed"
        assert outcome.get("error") in (None, ErrorCode.ESRCH)
        assert (await kernel.call("proc.list"))["processes"] == []
        assert await runtime.list_ids() == []
