"""One-shot runs for real: each outcome, the limits behind them, and the output cap."""

import os

import pytest

from sandbox.errors import UnsupportedError
from sandbox.oci.spec import ProcessSpec
from sandbox.policy import Limits, Mount, NetworkMode, NetworkPolicy, Policy
from sandbox.runtime import Outcome, Stdio
from tests._containers import LOOP_DEVICES

pytestmark = pytest.mark.v2vm

MiB = 1 << 20


def with_limits(policy, **limits):
    return policy.model_copy(update={"limits": Limits(**{**policy.limits.model_dump(), **limits})})


async def test_exit_code_and_output_pass_through(run):
    result, out = await run(["sh", "-c", "printf hello; printf oops >&2; exit 42"])
    assert (result.status, result.exit_code) == (Outcome.EXITED, 42)
    assert (bytes(out.stdout), bytes(out.stderr)) == (b"hello", b"oops")
    assert result.output_bytes == 9
    assert not result.output_truncated
    assert result.wall_ms > 0


async def test_memory_limit_is_an_oom_outcome(run, policy):
    result, _ = await run(
        ["python3", "-c", "x = bytearray(512 << 20)"], policy=with_limits(policy, memory="48M")
    )
    assert (result.status, result.exit_code) == (Outcome.OOM, 137)
    assert result.oom_kills >= 1
    assert result.memory_peak_bytes <= 49 * MiB


async def test_wall_clock_limit_is_a_timeout_outcome(run):
    result, _ = await run(["sleep", "30"], time_limit=0.5)
    assert (result.status, result.exit_code) == (Outcome.TIMEOUT, 137)
    assert 400 < result.wall_ms < 10_000


async def test_the_policy_timeout_applies_when_none_is_given(run, policy):
    result, _ = await run(["sleep", "30"], policy=with_limits(policy, timeout="300ms"))
    assert result.status is Outcome.TIMEOUT


async def test_death_by_signal_is_a_killed_outcome(run):
    result, _ = await run(["sh", "-c", "kill -SEGV $$"])
    assert (result.status, result.exit_code) == (Outcome.KILLED, 128 + 11)


async def test_refused_forks_are_noted(run, policy):
    forker = (
        "import os, time\nfor _ in range(40):\n"
        "    try:\n        if os.fork() == 0: time.sleep(5); os._exit(0)\n"
        "    except BlockingIOError: pass\ntime.sleep(1)"
    )
    result, _ = await run(
        ["python3", "-c", forker], policy=with_limits(policy, pids=8), time_limit=20
    )
    assert result.pids_limit_hit
    assert result.pids_peak <= 8


async def test_output_past_the_cap_is_cut_and_flagged(run, policy):
    result, out = await run(
        ["sh", "-c", "head -c 3000000 /dev/zero; echo tail >&2"],
        policy=with_limits(policy, output="1M"),
    )
    assert result.status is Outcome.EXITED
    assert result.output_truncated
    assert len(out.stdout) + len(out.stderr) == MiB
    assert result.output_bytes == 3_000_005


async def test_stdin_reaches_the_command(run):
    read_end, write_end = os.pipe()
    os.write(write_end, b"from the host\n")
    os.close(write_end)
    try:
        result, out = await run(["cat"], stdin=read_end)
    finally:
        os.close(read_end)
    assert bytes(out.stdout) == b"from the host\n"
    assert result.exit_code == 0


@pytest.mark.skipif(not LOOP_DEVICES, reason="no loop devices here for /data quotas")
async def test_data_quota_stops_writes_at_the_limit(run, policy):
    result, out = await run(
        ["sh", "-c", ("dd if=/dev/zero of=/data/big bs=1M count=64 2>/dev/null; echo rc=$?; "
                      "du -m /data/big | cut -f1")],
        policy=with_limits(policy, disk="16M"),
    )  # fmt: skip
    rc, used = out.stdout.decode().split()
    assert rc != "rc=0"
    assert int(used) <= 16
    assert result.status is Outcome.EXITED


async def test_network_modes_other_than_none_are_refused_for_now(runtime, policy):
    from sandbox.run import run_in_sandbox  # noqa: PLC0415

    egress = policy.model_copy(update={"network": NetworkPolicy(mode=NetworkMode.EGRESS)})

    async def sink(_data):
        pass

    with pytest.raises(UnsupportedError, match="not available yet"):
        await run_in_sandbox(runtime, ProcessSpec(["true"]), egress, stdout=sink, stderr=sink)
    assert isinstance(egress, Policy)


async def test_policy_mounts_are_visible_and_read_only(run, policy, tmp_path):
    shared = tmp_path / "models"
    shared.mkdir()
    (shared / "weights.txt").write_text("42\n")
    shared.chmod(0o755)
    tmp_path.chmod(0o755)
    mounted = policy.model_copy(
        update={"mounts": [Mount(source=str(shared), destination="/models")]}
    )
    result, out = await run(
        [
            "sh",
            "-c",
            "cat /models/weights.txt; touch /models/new 2>&1; echo x >> /models/weights.txt",
        ],
        policy=mounted,
    )
    assert out.stdout.startswith(b"42\n")
    assert b"Read-only file system" in out.stdout + out.stderr
    assert (shared / "weights.txt").read_text() == "42\n"
    assert not (shared / "new").exists()
    assert result.status is Outcome.EXITED


async def test_a_missing_mount_source_is_refused_before_anything_is_made(runtime, policy, tmp_path):
    from sandbox.errors import FailedPreconditionError  # noqa: PLC0415

    missing = policy.model_copy(
        update={"mounts": [Mount(source=str(tmp_path / "nope"), destination="/models")]}
    )
    with pytest.raises(FailedPreconditionError, match="does not exist"):
        await runtime.create(ProcessSpec(["true"]), missing, stdio=Stdio())
    assert await runtime.list_ids() == []


@pytest.fixture
def strict_umask():
    """The creating process runs under a hardened umask, as some hosts set it."""
    old = os.umask(0o077)
    yield
    os.umask(old)


async def test_the_creators_umask_does_not_reach_the_sandbox(run, strict_umask):
    script = "id -un; cat /etc/hostname; ls / > /dev/null && echo listed; touch /data/x && echo ok"
    result, out = await run(["sh", "-c", script])
    assert bytes(out.stderr) == b""
    assert bytes(out.stdout) == b"sandbox\nsandbox\nlisted\nok\n"
    assert result.exit_code == 0
