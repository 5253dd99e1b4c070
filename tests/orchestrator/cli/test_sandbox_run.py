"""`agentos sandbox run` as a user runs it: no daemon, output streamed, CMD's status."""

import json
import os
import subprocess

import pytest
import trio

from tests._support import agentos_argv, agentos_env, run_agentos

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes need root")


def result_line(stdout):
    return json.loads(stdout.decode().splitlines()[-1])


def assert_clean(data_dir):
    sandbox = data_dir / "sandbox"
    bundles = list(sandbox.glob("*/bundles"))  # the runtime's (runc/bundles)
    assert bundles
    assert [b for b in bundles if any(b.iterdir())] == []
    assert list((sandbox / "uids").iterdir()) == []


async def test_output_streams_and_the_status_is_cmds(data_dir):
    result = await run_agentos(
        "sandbox", "run", "--json", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
        env=agentos_env(data_dir),
    )  # fmt: skip
    assert result.returncode == 3
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "out"
    assert result.stderr.decode() == "err\n"
    document = json.loads(lines[-1])
    assert {"exit_code", "status", "wall_ms", "memory_peak_bytes", "pids_peak"} <= set(document)
    assert (document["exit_code"], document["status"]) == (3, "exited")
    assert_clean(data_dir)


@pytest.mark.parametrize(
    ("options", "command", "status", "code"),
    [
        (["--memory", "32M"], ["python3", "-c", "x = bytearray(256 << 20)"], "oom", 137),
        (["--timeout", "500ms"], ["sleep", "30"], "timeout", 137),
        ([], ["sh", "-c", "kill -TERM $$"], "killed", 143),
    ],
)
async def test_limits_end_in_their_outcomes(data_dir, options, command, status, code):
    result = await run_agentos(
        "sandbox", "run", "--json", *options, "--", *command, env=agentos_env(data_dir)
    )
    assert result.returncode == code
    assert result_line(result.stdout)["status"] == status
    assert_clean(data_dir)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--", "no-such-command"], 127, "no-such-command"),
        (["--network", "egress", "--", "true"], 125, "network mode 'egress' is not available yet"),
        (["--memory", "1K", "--", "true"], 2, "--memory"),
        (["--cpus", "0", "--", "true"], 2, "--cpus"),
        (["--timeout", "soon", "--", "true"], 2, "not a duration"),
        ([], 2, "no command given"),
    ],
)
async def test_errors_have_docker_like_statuses_and_say_why(data_dir, args, code, message):
    result = await run_agentos("sandbox", "run", *args, env=agentos_env(data_dir))
    assert result.returncode == code
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


async def test_interactive_passes_stdin(data_dir):
    with trio.fail_after(60):
        result = await trio.run_process(
            agentos_argv("sandbox", "run", "-i", "--", "tr", "a-z", "A-Z"),
            stdin=b"shout\n", capture_stdout=True, capture_stderr=True,
            env=agentos_env(data_dir), check=False,
        )  # fmt: skip
    assert result.stdout == b"SHOUT\n"
    assert result.returncode == 0


async def test_interrupting_the_run_removes_the_sandbox(spawn_agentos, data_dir):
    run = await spawn_agentos(
        "sandbox", "run", "--", "sh", "-c", "echo started; sleep 60", env=agentos_env(data_dir)
    )
    await run.wait_for_output("started")
    assert run.process.returncode is None
    assert await run.stop() == 128 + 15
    assert_clean(data_dir)
    assert b"Traceback" not in run.stderr


def test_help_shows_the_documented_options():
    output = subprocess.run(
        agentos_argv("sandbox", "run", "--help"), capture_output=True, check=True
    ).stdout.decode()
    for option in ("--policy", "--memory", "--cpus", "--pids", "--network", "--timeout",
                   "--runtime", "--json"):  # fmt: skip
        assert option in output


async def test_the_docker_runtime_from_the_command_line(data_dir, dockerd):
    result = await run_agentos(
        "sandbox", "run", "--runtime", "docker", "--json", "--", "sh", "-c", "id -u; exit 4",
        env=agentos_env(data_dir, DOCKER_HOST=dockerd),
    )  # fmt: skip
    assert result.returncode == 4
    uid = int(result.stdout.decode().splitlines()[0])
    assert uid >= 1_000_000
    assert result_line(result.stdout)["status"] == "exited"
    assert list((data_dir / "sandbox" / "docker").iterdir()) == []
