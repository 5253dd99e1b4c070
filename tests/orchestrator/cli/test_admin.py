"""`agentos call`, `ps` and `kill` against a kernel serving in the test process."""

import json

import pytest

from tests._support import agentos_env, is_root, run_agentos


@pytest.fixture
def env(running_kernel, data_dir):
    return agentos_env(data_dir)


async def test_call_prints_the_result_as_json(env):
    result = await run_agentos("call", "sys.ping", '{"data": "héllo"}', env=env)
    assert result.returncode == 0
    assert json.loads(result.stdout)["data"] == "héllo"
    compact = await run_agentos("call", "sys.ping", "--compact", env=env)
    assert compact.stdout.count(b"\n") == 1


async def test_call_with_no_kernel_says_so(data_dir):
    result = await run_agentos("call", "sys.info", env=agentos_env(data_dir))
    assert result.returncode == 69
    assert b"no kernel is serving" in result.stderr
    assert b"agentos up" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("{oops", "JSON_ARGS is not valid JSON"),
        ("[1, 2]", "JSON_ARGS must be a JSON object, not list"),
    ],
)
async def test_call_refuses_bad_json_args(env, args, message):
    result = await run_agentos("call", "sys.ping", args, env=env)
    assert result.returncode == 2
    assert message in result.stderr.decode()


async def test_call_reports_kernel_errors_with_code_and_fields(env):
    unknown = await run_agentos("call", "sys.nothing", env=env)
    assert unknown.returncode == 1
    assert "ENOSYS: no such call 'sys.nothing'" in unknown.stderr.decode()
    invalid = await run_agentos("call", "proc.spawn", '{"name": ""}', env=env)
    assert invalid.returncode == 1
    lines = invalid.stderr.decode().splitlines()
    assert lines[0].startswith("agentos: EINVAL: invalid arguments")
    assert lines[1].strip().startswith("args.name:")
    assert b"Traceback" not in invalid.stderr


async def test_ps_and_kill(env):
    parent = json.loads(
        (await run_agentos("call", "proc.spawn", '{"name": "shell"}', env=env)).stdout
    )
    child_args = json.dumps({"name": "job", "parent": parent["pid"]})
    child = json.loads((await run_agentos("call", "proc.spawn", child_args, env=env)).stdout)
    listed = json.loads((await run_agentos("ps", "--json", env=env)).stdout)
    assert [(p["pid"], p["ppid"]) for p in listed] == [
        (parent["pid"], 0),
        (child["pid"], parent["pid"]),
    ]
    killed = await run_agentos("kill", str(parent["pid"]), "--json", env=env)
    final = json.loads(killed.stdout)
    assert (final["state"], final["term_signal"]) == ("exited", 9)
    assert json.loads((await run_agentos("ps", "--json", env=env)).stdout) == []


@pytest.mark.skipif(not is_root(), reason="containers need root")
async def test_ps_shows_a_process_container(env):
    args = json.dumps({"name": "server", "command": {"argv": ["sleep", "60"]}})
    spawned = json.loads((await run_agentos("call", "proc.spawn", args, env=env)).stdout)
    table = (await run_agentos("ps", env=env)).stdout.decode().splitlines()
    assert table[0].split() == [
        "PID", "PPID", "STATE", "STARTED", "APP", "NAME", "CONTAINER", "CAPABILITIES"
    ]  # fmt: skip
    container = spawned["container"]["id"]
    assert f"{container} (runc, standard)" in table[1]
    await run_agentos("kill", str(spawned["pid"]), env=env)


@pytest.mark.skipif(not is_root(), reason="containers need root")
async def test_logs_prints_a_commands_output_and_follows_it(env):
    script = "echo out; echo err >&2; sleep 1; echo more"
    args = json.dumps({"name": "job", "command": {"argv": ["sh", "-c", script]}})
    spawned = json.loads((await run_agentos("call", "proc.spawn", args, env=env)).stdout)
    pid = str(spawned["pid"])
    followed = await run_agentos("logs", "--follow", pid, env=env)
    assert (followed.returncode, followed.stdout, followed.stderr) == (0, b"out\nmore\n", b"err\n")
    as_json = await run_agentos("logs", "--json", pid, env=env)
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    chunks = [(line["stream"], line["data"]) for line in lines[:-1]]
    assert sorted(chunks[:2]) == [("stderr", "err\n"), ("stdout", "out\n")]  # two pipes
    assert chunks[2:] == [("stdout", "more\n")]
    assert [line["seq"] for line in lines[:-1]] == [1, 2, 3]
    assert lines[-1] == {"last_seq": 3, "evicted_bytes": 0, "ended": True}
    missing = await run_agentos("logs", "4242", env=env)
    assert (missing.returncode, missing.stderr) == (1, b"agentos: ESRCH: no such process 4242\n")


async def test_kill_errors(env):
    missing = await run_agentos("kill", "4242", env=env)
    assert missing.returncode == 1
    assert b"ESRCH: no such process 4242" in missing.stderr
    invalid = await run_agentos("kill", "0", env=env)
    assert invalid.returncode == 2


async def test_help_describes_every_command(env):
    result = await run_agentos("--help", env=env)
    assert result.returncode == 0
    for command in ("up", "kernel", "orchestrator", "call", "ps", "kill", "logs"):
        assert f"    {command}" in result.stdout.decode()


@pytest.mark.parametrize("value", ["-1", "0", "soon"])
async def test_timeout_must_be_a_positive_number(env, value):
    result = await run_agentos("call", "sys.ping", "--timeout", value, env=env)
    assert result.returncode == 2
    assert b"--timeout" in result.stderr
