"""The escape battery: what a hostile command tries, what it gets, and that the host is fine.

Every case runs in a real sandbox under the standard policy (or a narrower one) and
asserts two things: the attempt was contained, and the host did not change.
"""

import errno
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from sandbox.oci.spec import ProcessSpec
from sandbox.policy import Limits
from sandbox.runtime import Outcome, Stdio

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes need root")

MiB = 1 << 20

# x86_64 syscall numbers, and arguments that make each call meaningful if it were allowed.
SYSCALLS = {
    "keyctl": (250, [0, -3, 0]),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "add_key": (248, [0, 0, 0, 0, 0]),
    "request_key": (249, [0, 0, 0, 0]),
    "bpf": (321, [0, 0, 0]),
    "perf_event_open": (298, [0, 0, -1, -1, 0]),  # allowed on this host outside sandboxes
    "ptrace": (101, [0, 0, 0, 0]),  # PTRACE_TRACEME
    "process_vm_readv": (310, [1, 0, 0, 0, 0, 0]),
    "io_uring_setup": (425, [1, 0]),  # EFAULT if it were allowed
    "userfaultfd": (323, [0]),
    "mount": (165, [0, 0, 0, 0, 0]),
    "unshare": (272, [0x10000000]),  # CLONE_NEWUSER
    "setns": (308, [0, 0]),
    "reboot": (169, [0xFEE1DEAD, 672274793, 0x1234567, 0]),  # LINUX_REBOOT_CMD_RESTART
    "init_module": (175, [0, 0, 0]),
    "finit_module": (313, [0, 0, 0]),
    "clock_settime": (227, [0, 0]),
    "settimeofday": (164, [0, 0]),
    "sethostname": (170, [0, 0]),
    "pivot_root": (155, [0, 0]),
    "chroot": (161, [0]),
}

PROBE = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
nr, *args = (int(a) for a in sys.argv[1:])
result = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
print(result, ctypes.get_errno())
"""


def limits(policy, **changes):
    return policy.model_copy(update={"limits": Limits(**{**policy.limits.model_dump(), **changes})})


def host_modules():
    modules = Path("/proc/modules")
    return modules.read_text() if modules.exists() else None  # no module support at all


def probe_on_host(name):
    number, args = SYSCALLS[name]
    result = subprocess.run(
        [os.path.realpath(sys.executable), "-I", "-S", "-c", PROBE, str(number), *map(str, args)],
        capture_output=True, check=True, user=65534, group=65534,
    )  # fmt: skip
    return tuple(map(int, result.stdout.split()))


@pytest.mark.parametrize("name", sorted(SYSCALLS))
async def test_dangerous_syscalls_are_refused(run, name):
    number, args = SYSCALLS[name]
    modules, hostname, clock = host_modules(), socket.gethostname(), time.time()
    result, out = await run(["python3", "-I", "-c", PROBE, str(number), *map(str, args)])
    assert result.status is Outcome.EXITED, out.stderr
    value, error = map(int, out.stdout.split())
    assert (value, error) == (-1, errno.EPERM)
    assert host_modules() == modules  # nothing was loaded
    assert socket.gethostname() == hostname
    assert abs(time.time() - clock) < 60  # the clock did not move


@pytest.mark.parametrize("name", ["perf_event_open", "io_uring_setup"])
async def test_it_is_the_filter_that_refuses_not_missing_privilege(run, name):
    # An unprivileged process on this host may make these calls (EFAULT: bad pointer);
    # in the sandbox the seccomp filter stops them before the kernel looks (EPERM).
    assert probe_on_host(name)[1] != errno.EPERM
    number, args = SYSCALLS[name]
    _, out = await run(["python3", "-I", "-c", PROBE, str(number), *map(str, args)])
    assert tuple(map(int, out.stdout.split())) == (-1, errno.EPERM)


async def test_clone_with_namespace_flags_is_refused(run):
    result, out = await run(["unshare", "--user", "--map-root-user", "true"])
    assert result.exit_code != 0
    assert b"Operation not permitted" in out.stderr


async def test_fork_bomb_is_held_at_the_pids_limit(run, policy):
    canary = await trio.lowlevel.open_process(["sleep", "30"])
    try:
        result, _ = await run(
            ["sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 2"],
            policy=limits(policy, pids=32), time_limit=10,
        )  # fmt: skip
        assert result.pids_limit_hit
        assert result.pids_peak <= 32
        assert canary.returncode is None  # the host still runs its processes
        await trio.run_process(["true"])  # and can still fork
    finally:
        canary.kill()
        await canary.wait()


async def test_memory_hog_is_killed_at_its_limit(run, policy):
    result, _ = await run(
        ["python3", "-c", "chunks = []\nwhile True: chunks.append(bytearray(8 << 20))"],
        policy=limits(policy, memory="64M"),
    )
    assert result.status is Outcome.OOM
    assert result.memory_peak_bytes <= 65 * MiB


async def test_filling_tmp_stops_at_its_size(run, policy):
    result, out = await run(
        ["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=512 2>&1; du -m /tmp/fill"],
        policy=limits(policy, tmpfs="16M"),
    )
    assert b"No space left on device" in out.stdout
    assert int(out.stdout.split()[-2]) <= 16
    assert not Path("/tmp/fill").exists()  # the host's /tmp never saw it
    assert result.status is Outcome.EXITED


async def test_file_descriptors_run_out_at_nofile(run, policy):
    code = (
        "import os\nfds = []\ntry:\n    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError as e: print(len(fds), e.errno)"
    )
    _, out = await run(["python3", "-c", code], policy=limits(policy, nofile=64))
    opened, error = map(int, out.stdout.split())
    assert error == errno.EMFILE
    assert opened < 64


SPIN = "while True: pass"


async def test_a_cpu_spinner_is_throttled_to_its_share(runtime, policy):
    container = await runtime.create(
        ProcessSpec(["python3", "-c", SPIN]), limits(policy, cpus=0.2), stdio=Stdio()
    )
    await container.start()
    started = time.monotonic()
    first = await container.stats()
    await trio.sleep(1.5)
    stats = await container.stats()  # while it spins: Docker drops the cgroup at exit
    wall_us = (time.monotonic() - started) * 1e6
    await container.kill()
    await container.wait()
    await container.delete()
    assert stats.cpu_throttled_periods > first.cpu_throttled_periods
    used = stats.cpu_usage_us - first.cpu_usage_us
    assert used < 0.5 * wall_us  # held near its 0.2 CPUs, far from the whole core it wants


async def test_sleeping_past_the_timeout_is_killed(run):
    result, _ = await run(["sleep", "60"], time_limit=1)
    assert (result.status, result.exit_code) == (Outcome.TIMEOUT, 137)


def uid_of(status):
    try:
        for line in status.read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def host_processes_of(uid):
    return [int(s.parent.name) for s in Path("/proc").glob("[0-9]*/status") if uid_of(s) == uid]


async def test_daemonized_children_die_with_the_sandbox(runtime, policy):
    container = await runtime.create(
        ProcessSpec(["sh", "-c", "setsid sh -c 'sleep 300' & (nohup sleep 300 &); sleep 0.2"]),
        policy, stdio=Stdio(),
    )  # fmt: skip
    await container.start()
    with trio.fail_after(10):
        while len(host_processes_of(container.uid)) < 3:
            await trio.sleep(0.02)
    await container.wait()  # the command ended; its daemons were still there a moment ago
    await container.delete()
    with trio.fail_after(10):
        while host_processes_of(container.uid):
            await trio.sleep(0.02)


REFUSED = (b"Read-only file system", b"Permission denied", b"Operation not permitted")


def refusals(stderr):
    return sum(stderr.count(reason) for reason in REFUSED)


async def test_the_root_filesystem_is_read_only(run):
    _, out = await run(
        ["sh", "-c", "touch /x; touch /usr/bin/agentos-was-here; echo evil >> /etc/passwd"]
    )
    assert out.stderr.count(b"Read-only file system") == 2
    assert refusals(out.stderr) == 3  # /etc/passwd is root's too: EACCES comes first
    assert not Path("/usr/bin/agentos-was-here").exists()
    assert b"evil" not in Path("/etc/passwd").read_bytes()


async def test_raw_sockets_are_refused(run):
    code = (
        "import socket\ntry: socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)\n"
        "except OSError as e: print(e.errno)"
    )
    _, out = await run(["python3", "-c", code])
    assert int(out.stdout) == errno.EPERM


async def test_sysrq_and_proc_sys_are_not_writable(run):
    panic = Path("/proc/sys/kernel/panic").read_text()
    swappiness = Path("/proc/sys/vm/swappiness").read_text()
    script = (
        "echo h > /proc/sysrq-trigger; echo 77 > /proc/sys/kernel/panic; "
        "echo 7 > /proc/sys/vm/swappiness"
    )
    _, out = await run(["sh", "-c", script])
    sysrq = Path("/proc/sysrq-trigger").exists()  # this host's kernel may have none
    assert out.stderr.count(b"Read-only file system") == (3 if sysrq else 2)
    assert Path("/proc/sys/kernel/panic").read_text() == panic
    assert Path("/proc/sys/vm/swappiness").read_text() == swappiness


async def test_devices_cannot_be_made(run):
    _, out = await run(["sh", "-c", "mknod /tmp/sda b 8 0; mknod /dev/mem2 c 1 1; ls /dev"])
    assert refusals(out.stderr) == 2
    assert set(bytes(out.stdout).split()) <= {
        b"fd", b"full", b"mqueue", b"null", b"ptmx", b"pts", b"random", b"shm",
        b"stderr", b"stdin", b"stdout", b"tty", b"urandom", b"zero",
    }  # fmt: skip


async def test_setuid_binaries_gain_nothing(run):
    script = (
        "grep NoNewPrivs /proc/self/status; mkdir /tmp/p; "
        "/usr/bin/mount -t proc proc /tmp/p; echo mount=$?; id -u"
    )
    _, out = await run(["sh", "-c", script])
    lines = out.stdout.decode().split("\n")
    assert lines[0].split() == ["NoNewPrivs:", "1"]
    assert lines[1] != "mount=0"
    assert int(lines[2]) >= 1_000_000


async def test_the_hosts_shadow_file_is_out_of_reach(run):
    paths = "/etc/shadow /proc/1/root/etc/shadow /../../etc/shadow /proc/self/root/../etc/shadow"
    _, out = await run(["sh", "-c", f"cat {paths}"])
    assert out.stdout == b""
    assert out.stderr.count(b"No such file or directory") == 4
    host_lines = [line for line in Path("/etc/shadow").read_text().splitlines() if line]
    assert not any(line.encode() in out.stderr for line in host_lines)


async def test_writing_cgroup_procs_cannot_leave_the_cgroup(runtime, policy):
    out_read, out_write = os.pipe()
    script = (
        "for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do "
        "echo $$ > $f; done 2>&1; sleep 5"
    )
    container = await runtime.create(
        ProcessSpec(["sh", "-c", script]), policy, stdio=Stdio(stdout=out_write)
    )
    os.close(out_write)
    await container.start()
    cgroup = container.cgroup
    with trio.fail_after(10):
        while not cgroup.pids():
            await trio.sleep(0.02)
    await trio.sleep(0.5)
    inside = cgroup.pids()
    await container.kill()
    await container.wait()
    await container.delete()
    output = b""
    while chunk := os.read(out_read, 65536):
        output += chunk
    os.close(out_read)
    assert b"Read-only file system" in output
    assert len(inside) >= 2  # tini and the shell are still where they started


def host_address():
    """This host's address on its default route (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))
        return probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()


async def test_network_none_cannot_reach_a_host_service(run):
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))  # noqa: S104 - the host service the sandbox must not reach
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    targets = ["127.0.0.1", *filter(None, [host_address()])]
    code = (
        "import socket, sys\nfor host in sys.argv[1:]:\n"
        f"    try: socket.create_connection((host, {port}), timeout=2); print('connected')\n"
        "    except OSError as e: print(e.errno)"
    )
    try:
        _, out = await run(["python3", "-c", code, *targets])
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the host's service
    finally:
        listener.close()
    results = out.stdout.split()
    assert b"connected" not in results
    assert results[0] == str(errno.ECONNREFUSED).encode()  # its own, empty loopback
    assert all(r == str(errno.ENETUNREACH).encode() for r in results[1:])  # no route out


async def test_kill_minus_one_stays_inside(run):
    canary = await trio.lowlevel.open_process(["sleep", "30"])
    try:
        result, _ = await run(["sh", "-c", "kill -9 -1; sleep 1; echo survived"])
        assert canary.returncode is None  # a host process of another uid: untouched
        assert result.status in (Outcome.EXITED, Outcome.KILLED)
    finally:
        canary.kill()
        await canary.wait()
