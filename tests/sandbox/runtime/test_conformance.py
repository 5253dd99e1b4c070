"""What every runtime must do, checked for real against each one (runc, crun, Docker)."""

import json
import os
import signal
import socket
from pathlib import Path

import pytest
import trio

from sandbox.cgroups import CgroupMode
from sandbox.errors import FailedPreconditionError, InvalidArgumentError
from sandbox.oci.spec import KERNEL_SOCKET, ProcessSpec
from sandbox.runtime import (
    ContainerState,
    IllegalTransitionError,
    RuntimeFailedError,
    Stdio,
    open_shared_volume,
)
from tests._containers import successor_of

pytestmark = pytest.mark.v2vm


class Pipe:
    """A pipe whose read end the test drains; the container gets the write end."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()

    def give(self):
        os.close(self.write_fd)

    def read_all(self):
        chunks = []
        while chunk := os.read(self.read_fd, 65536):
            chunks.append(chunk)
        os.close(self.read_fd)
        return b"".join(chunks)


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def create(runtime, policy, argv, *, stdout=None, stderr=None):
    stdio = Stdio(
        stdout=stdout.write_fd if stdout else None, stderr=stderr.write_fd if stderr else None
    )
    return await runtime.create(ProcessSpec(argv), policy, stdio=stdio)


async def test_exit_code_and_both_streams(runtime, policy):
    out, err = Pipe(), Pipe()
    container = await create(
        runtime, policy, ["sh", "-c", "echo out; echo err >&2; exit 7"], stdout=out, stderr=err
    )
    out.give()
    err.give()
    await container.start()
    status = await container.wait()
    assert (status.code, status.signal) == (7, None)
    assert (out.read_all(), err.read_all()) == (b"out\n", b"err\n")
    await container.delete()


async def test_the_state_machine_is_enforced(runtime, policy):
    container = await create(runtime, policy, ["true"])
    assert container.state is ContainerState.CREATED
    with pytest.raises(FailedPreconditionError, match="has not been started"):
        await container.wait()
    await container.start()
    assert container.state is ContainerState.RUNNING
    with pytest.raises(IllegalTransitionError, match="running container cannot become running"):
        await container.start()
    await container.wait()
    assert container.state is ContainerState.STOPPED
    await container.delete()
    assert container.state is ContainerState.DELETED
    with pytest.raises(IllegalTransitionError):
        await container.start()
    await container.delete()  # deleting twice is harmless


async def test_a_created_container_can_be_deleted_without_starting(runtime, policy):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.delete()
    assert container.state is ContainerState.DELETED
    assert not Path(f"/proc/{container.pid}").exists()


async def test_signal_reaches_the_command(runtime, policy):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()
    await trio.sleep(0.1)
    await container.signal(signal.SIGTERM)
    status = await container.wait()
    assert status.signal == signal.SIGTERM
    assert status.shell_code == 143
    await container.delete()


async def test_kill_takes_every_process_including_daemonized_ones(runtime, policy):
    container = await create(
        runtime, policy, ["sh", "-c", "setsid sleep 60 & (sleep 60 &) ; sleep 60"]
    )
    await container.start()
    with trio.fail_after(10):
        while (await container.stats()).pids_current < 4:
            await trio.sleep(0.02)
    await container.kill()
    status = await container.wait()
    assert status.signal == signal.SIGKILL
    assert (await container.stats()).pids_current == 0
    await container.delete()


async def test_exec_runs_inside_the_same_container(runtime, policy):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()
    out = Pipe()
    status = await container.exec(
        ProcessSpec(["sh", "-c", "id -u; hostname; echo hi > /data/made-by-exec"]),
        Stdio(stdout=out.write_fd),
    )
    out.give()
    uid, hostname = out.read_all().decode().split()
    assert status.code == 0
    assert int(uid) == container.uid
    assert hostname == "sandbox"
    check = Pipe()
    await container.exec(ProcessSpec(["cat", "/data/made-by-exec"]), Stdio(stdout=check.write_fd))
    check.give()
    assert check.read_all() == b"hi\n"
    await container.kill()
    await container.wait()
    with pytest.raises(FailedPreconditionError, match="not running"):
        await container.exec(ProcessSpec(["true"]), Stdio())
    await container.delete()


async def test_exec_streams_stdin_in_and_output_out(runtime, policy):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()
    stdin_read, stdin_write = os.pipe()
    os.write(stdin_write, b"line one\nline two\n")
    os.close(stdin_write)
    out = Pipe()
    status = await container.exec(
        ProcessSpec(["sh", "-c", "tr a-z A-Z; echo done"]),
        Stdio(stdin=stdin_read, stdout=out.write_fd),
    )
    os.close(stdin_read)
    out.give()
    assert status.code == 0
    assert out.read_all() == b"LINE ONE\nLINE TWO\ndone\n"
    await container.delete()


async def test_exec_returns_when_its_process_ends_though_stdin_stays_open(runtime, policy):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()
    stdin_read, stdin_write = os.pipe()  # the caller never closes its end during the exec
    out = Pipe()
    try:
        with trio.fail_after(20):
            status = await container.exec(
                ProcessSpec(["echo", "done"]), Stdio(stdin=stdin_read, stdout=out.write_fd)
            )
        out.give()
        assert (status.code, out.read_all()) == (0, b"done\n")
    finally:
        os.close(stdin_read)
        os.close(stdin_write)
        await container.delete()


async def test_a_cancelled_exec_returns_at_once_and_ends_its_process(runtime, policy):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()

    def execs_running():
        return [pid for pid in container.cgroup.pids() if cmdline(pid) == b"sleep\x00300\x00"]

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(container.exec, ProcessSpec(["sleep", "300"]), Stdio())
            while not execs_running():
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    with trio.fail_after(10):
        while execs_running():
            await trio.sleep(0.05)
    await container.delete()
    assert zombie_children_of_uid(container.uid) == []


async def test_a_cancelled_exec_ends_a_process_that_ignores_sigterm(runtime, policy):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()
    command = ["sh", "-c", "trap '' TERM; sleep 301; :"]  # the sleep ignores TERM too

    def execs_running():
        return [pid for pid in container.cgroup.pids() if b"301" in cmdline(pid)]

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(container.exec, ProcessSpec(command), Stdio())
            while len(execs_running()) < 2:  # the shell and its sleep
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    with trio.fail_after(10):
        while execs_running():
            await trio.sleep(0.05)
    with trio.fail_after(20):
        await container.delete()
    assert zombie_children_of_uid(container.uid) == []
    assert not container.cgroup.exists()


async def test_memory_high_is_set_as_the_cgroup_version_means_it(runtime, policy):
    limits = policy.limits.model_copy(update={"memory_high": 96 << 20})
    throttled = policy.model_copy(update={"limits": limits})
    container = await create(runtime, throttled, ["sleep", "60"])
    await container.start()
    layout = runtime.cgroups.layout
    name = container.cgroup.name
    if runtime.cgroups.mode is CgroupMode.V2:
        value = (layout.unified / name / "memory.high").read_text()
        low = (layout.unified / name / "memory.low").read_text()
        assert (int(value), low.strip()) == (96 << 20, "0")
    else:  # v1 has no memory.high: its soft limit is the nearest
        value = (layout.v1["memory"] / name / "memory.soft_limit_in_bytes").read_text()
        assert int(value) == 96 << 20
    await container.delete()


async def test_the_kernel_socket_it_is_given_is_reachable_inside(runtime, policy, tmp_path):
    path = tmp_path / "k.sock"
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await listener.bind(str(path))
    listener.listen(1)
    code = (
        "import socket; s = socket.socket(socket.AF_UNIX); "
        f"s.connect({KERNEL_SOCKET!r}); s.sendall(b'hello'); print(s.recv(5).decode())"
    )
    out = Pipe()
    container = await runtime.create(
        ProcessSpec(["python3", "-c", code]), policy, stdio=Stdio(stdout=out.write_fd),
        kernel_socket=path,
    )  # fmt: skip
    out.give()
    os.chown(path, container.uid, container.uid)
    path.chmod(0o600)  # only the sandbox's own uid may connect
    await container.start()
    with trio.fail_after(20):
        conn, _ = await listener.accept()
        assert await conn.recv(5) == b"hello"
        await conn.send(b"world")
        status = await container.wait()
    conn.close()
    listener.close()
    assert (status.code, out.read_all()) == (0, b"world\n")
    await container.delete()


async def test_stats_follow_what_the_command_uses(runtime, policy):
    container = await create(
        runtime, policy, ["python3", "-c", "import time; x = bytearray(48 << 20); time.sleep(30)"]
    )
    await container.start()
    with trio.fail_after(20):
        while (await container.stats()).memory_current < 48 << 20:
            await trio.sleep(0.05)
    stats = await container.stats()
    assert stats.pids_current >= 1
    assert stats.cpu_usage_us > 0
    await container.delete()


async def test_each_sandbox_gets_its_own_uid(runtime, policy):
    first = await create(runtime, policy, ["true"])
    second = await create(runtime, policy, ["true"])
    assert first.uid != second.uid
    assert min(first.uid, second.uid) >= 1_000_000
    await first.delete()
    await second.delete()


async def test_sandboxes_of_their_own_uids_share_a_groups_volume(runtime, policy, tmp_path):
    shared = tmp_path / "app"
    gid = 1_070_001
    await open_shared_volume(shared, gid=gid)
    first = await runtime.create(
        ProcessSpec(["sh", "-c", "umask 077; echo one > /data/a; mkdir /data/d"]), policy,
        stdio=Stdio(), data=shared, groups=[gid],
    )  # fmt: skip
    await first.start()
    assert (await first.wait()).code == 0
    await first.delete()
    assert shared.exists()  # a shared volume outlives its sandboxes
    second = await runtime.create(
        ProcessSpec(["sleep", "60"]), policy, stdio=Stdio(), data=shared, groups=[gid]
    )
    await second.start()
    out = Pipe()
    status = await second.exec(  # an exec has the group too
        ProcessSpec(["sh", "-c", "cat /data/a && echo two >> /data/a && echo x > /data/d/f"]),
        Stdio(stdout=out.write_fd),
    )
    out.give()
    assert (status.code, out.read_all()) == (0, b"one\n")
    assert first.uid != second.uid
    await second.kill()
    await second.wait()
    await second.delete()
    assert (shared / "a").read_bytes() == b"one\ntwo\n"
    assert {(shared / name).stat().st_gid for name in ("a", "d", "d/f")} == {gid}


@pytest.mark.parametrize("group", [0, 100, 65534])
async def test_root_and_system_groups_are_refused(runtime, policy, tmp_path, group):
    with pytest.raises(InvalidArgumentError, match="not an ordinary group"):
        await runtime.create(
            ProcessSpec(["true"]), policy, stdio=Stdio(), data=tmp_path, groups=[group]
        )
    assert runtime.owned() == {}
    assert await runtime.list_ids() == []


async def test_delete_releases_everything(runtime, policy, state_dir):
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()
    cgroup = container.cgroup
    assert cgroup.exists()
    assert container.uid in runtime.uids.reserved()
    await container.delete()
    assert not cgroup.exists()
    assert container.uid not in runtime.uids.reserved()
    assert not (runtime.bundles / container.id).exists()
    assert await runtime.list_ids() == []
    assert str(state_dir) not in Path("/proc/self/mountinfo").read_text()


async def test_a_refused_create_leaves_nothing_behind(runtime, policy, tmp_path):
    # The runtime itself refuses: the /data it is given does not exist.
    with pytest.raises(RuntimeFailedError):
        await runtime.create(
            ProcessSpec(["true"]), policy, stdio=Stdio(), data=tmp_path / "missing"
        )
    assert await runtime.list_ids() == []
    assert list(runtime.bundles.iterdir()) == []
    assert runtime.owned() == {}
    assert runtime.cgroups.children(runtime.cgroup_parent) == []
    assert str(runtime.state_dir) not in Path("/proc/self/mountinfo").read_text()


async def test_reconcile_removes_cgroups_an_engine_left_behind(runtime):
    # An engine that died with its containers leaves their (empty) cgroups behind.
    stale = runtime.cgroups.cgroup(f"{runtime.cgroup_parent}/{'ab' * 32}")
    stale.create()
    try:
        await runtime.reconcile()
        assert not stale.exists()
        assert runtime.cgroups.children(runtime.cgroup_parent) == []
    finally:
        if stale.exists():
            stale.delete()
        runtime.cgroups.remove_if_empty(runtime.cgroup_parent)


async def test_reconcile_removes_what_a_crashed_owner_left(runtime, policy, state_dir):
    running = await create(runtime, policy, ["sleep", "60"])
    await running.start()
    created = await create(runtime, policy, ["sleep", "60"])
    kept = await create(runtime, policy, ["sleep", "60"])
    # The owner dies here without cleaning up; a new one takes over the state directory.
    successor = successor_of(runtime, state_dir)
    removed = await successor.reconcile(keep={kept.id})
    assert sorted(removed) == sorted([running.id, created.id])
    for gone in (running, created):  # killed, and (made by this very process) reaped
        assert not Path(f"/proc/{gone.pid}").exists()
        assert zombie_children_of_uid(gone.uid) == []
    assert await successor.list_ids() == [kept.id]
    assert set(successor.owned().values()) == {kept.id}
    for gone in (running, created):
        assert not gone.cgroup.exists()
        assert not (runtime.bundles / gone.id).exists()
    await kept.delete()


async def test_reconcile_removes_every_orphan_it_can_and_names_the_rest(runtime, policy, state_dir):
    running = await create(runtime, policy, ["sleep", "60"])
    await running.start()
    pinned = runtime.bundles / "sb-0000-stuck" / "pinned"  # sorts first
    pinned.mkdir(parents=True)
    # A mount point cannot be removed (EBUSY), whatever the file system.
    await trio.run_process(["mount", "--bind", str(pinned), str(pinned)])
    successor = successor_of(runtime, state_dir)
    try:
        with pytest.raises(RuntimeFailedError, match="sb-0000-stuck"):
            await successor.reconcile()
        assert await successor.list_ids() == []  # the one after it went all the same
        assert not running.cgroup.exists()
    finally:
        await trio.run_process(["umount", str(pinned)])
    assert await successor.reconcile() == ["sb-0000-stuck"]


def zombie_children_of_uid(uid):
    me = str(os.getpid())
    zombies = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields.get("PPid") == me and fields.get("Uid", "").split()[:1] == [str(uid)]:
            zombies.append((status.parent.name, fields.get("State")))
    return zombies


async def test_a_collapsed_namespace_leaves_no_zombies(runtime, policy):
    # The command leaves children behind and exits: its namespace collapses around them.
    container = await create(runtime, policy, ["sh", "-c", "sleep 30 & sleep 30 & exit 0"])
    await container.start()
    await container.wait()
    await container.delete()
    assert zombie_children_of_uid(container.uid) == []


async def test_an_exec_orphaned_by_its_runtime_does_not_stall_the_delete(runtime, policy):
    if runtime.name == "docker":
        pytest.skip("Docker's exec processes are never ours to adopt")
    container = await create(runtime, policy, ["sleep", "60"])
    await container.start()
    argv = ["sh", "-c", "trap '' TERM; sleep 302; :"]
    spec = {**json.loads((container.bundle / "config.json").read_text())["process"], "args": argv}
    (container.bundle / "orphan.json").write_text(json.dumps(spec))
    process_file = str(container.bundle / "orphan.json")
    runc = await trio.lowlevel.open_process(
        [str(runtime.cli.binary), "--root", str(runtime.cli.root), "exec", "--process",
         process_file, container.id]
    )  # fmt: skip
    with trio.fail_after(20):
        while not [pid for pid in container.cgroup.pids() if b"302" in cmdline(pid)]:
            await trio.sleep(0.05)
    runc.kill()  # its command is adopted by us, the subreaper, and keeps running
    await runc.wait()
    with trio.fail_after(20):
        await container.delete()
    assert zombie_children_of_uid(container.uid) == []
    assert not container.cgroup.exists()
