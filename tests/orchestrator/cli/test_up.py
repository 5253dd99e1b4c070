"""`agentos up` as a user runs it: a subprocess on a free port, spoken to over HTTP and the CLI."""

import json
import os
import pwd
import signal
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest
import trio

import orchestrator
from orchestrator.cli._up import WebUser, _check_reachable
from tests._support import (
    agentos_env,
    is_root,
    run_agentos,
    uid_of,
)

URL = r"AgentOS desktop: (?P<base>http://127\.0\.0\.1:\d+)/\?token=(?P<token>\S+)"


def drop_user() -> WebUser | None:
    """The user `up` drops to as root, if that user can run this checkout."""
    for name in ("agentos", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        user = WebUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
        paths = [
            Path(sys.executable),
            Path(sysconfig.get_paths()["purelib"]),
            Path(orchestrator.__file__).parent,
        ]
        if all(_check_reachable(p, user, read=True) is None for p in paths):
            return user
        return None
    return None


def up_env(data_dir, **extra):
    env = agentos_env(data_dir, **extra)
    if is_root() and drop_user() is None:
        # This checkout cannot be read by an unprivileged user (e.g. it lives under /root):
        # run the web tier as root here; test_web_tier_drops_root covers the drop.
        env["AGENTOS_ORCHESTRATOR_USER"] = "root"
    return env


async def start_up(spawn_agentos, data_dir, *args, **env):
    up = await spawn_agentos("up", "--port", "0", *args, env=up_env(data_dir, **env))
    match = await up.wait_for_output(URL)
    return up, match["base"], match["token"]


def assert_clean(data_dir, up):
    stderr = up.stderr.decode()
    assert "Traceback" not in stderr, stderr
    assert sorted(os.listdir(data_dir / "run")) == [], "socket or record left behind"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_up_serves_then_stops_cleanly_on_signal(spawn_agentos, data_dir, sig):
    up, base, token = await start_up(spawn_agentos, data_dir)
    children = up.children()
    assert len(children) == 1
    async with httpx.AsyncClient(base_url=base) as http:
        health = (await http.get("/health")).json()
        assert health["status"] == "healthy"
        assert health["kernel"] == {"connected": True}
        assert (await http.get("/kernel/info")).status_code == 401
        info = await http.get("/kernel/info", headers={"Authorization": f"Bearer {token}"})
        assert info.json()["pid"] == up.pid  # the kernel runs in the supervisor process
    assert await up.stop(sig) == 0
    assert_clean(data_dir, up)
    assert not Path(f"/proc/{children[0]}").exists(), "the web tier outlived `up`"
    assert "shutting down" in up.stderr.decode()


async def test_cli_finds_the_kernel_through_the_data_dir(spawn_agentos, data_dir):
    up, _, _ = await start_up(spawn_agentos, data_dir)
    env = agentos_env(data_dir)  # AGENTOS_DATA_DIR only: no socket flags
    info = await run_agentos("call", "sys.info", env=env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["pid"] == up.pid
    spawned = await run_agentos("call", "proc.spawn", '{"name": "calc", "app_id": "calc"}', env=env)
    pid = json.loads(spawned.stdout)["pid"]
    listing = await run_agentos("ps", env=env)
    assert listing.returncode == 0
    header, row = listing.stdout.decode().splitlines()
    assert header.split()[:3] == ["PID", "PPID", "STATE"]
    assert row.split()[:3] == [str(pid), "0", "running"]
    killed = await run_agentos("kill", str(pid), env=env)
    assert killed.stdout.decode().strip() == f"killed {pid} (calc)"
    assert json.loads((await run_agentos("ps", "--json", env=env)).stdout) == []
    assert await up.stop() == 0
    assert_clean(data_dir, up)


@pytest.mark.skipif(not is_root(), reason="dropping privileges needs root")
async def test_web_tier_drops_root(spawn_agentos, data_dir):
    user = drop_user()
    if user is None:
        pytest.skip("no unprivileged user can read this checkout's Python and code")
    up, base, _ = await start_up(spawn_agentos, data_dir)
    (child,) = up.children()
    assert uid_of(up.pid) == 0
    assert uid_of(child) == user.uid
    socket = data_dir / "run" / "kernel.sock"
    assert (socket.stat().st_uid, socket.stat().st_mode & 0o777) == (user.uid, 0o600)
    assert (data_dir / "orchestrator").stat().st_uid == user.uid
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/health")).json()["kernel"]["connected"] is True
    assert f"as user {user.name}" in up.stderr.decode()
    assert await up.stop() == 0
    assert_clean(data_dir, up)


@pytest.mark.skipif(not is_root(), reason="dropping privileges needs root")
async def test_the_web_tier_reaches_the_kernel_under_a_strict_umask(spawn_agentos, data_dir):
    if drop_user() is None:
        pytest.skip("no unprivileged user can read this checkout's Python and code")
    fresh = data_dir / "fresh"  # every directory made by up itself
    up = await spawn_agentos("up", "--port", "0", env=agentos_env(fresh), umask=0o077)
    base = (await up.wait_for_output(URL))["base"]
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/health")).json()["kernel"]["connected"] is True
    assert await up.stop() == 0
    assert_clean(fresh, up)


async def test_token_from_the_environment(spawn_agentos, data_dir):
    token = "t" * 40
    up, base, printed = await start_up(spawn_agentos, data_dir, AGENTOS_TOKEN=token)
    assert printed == token
    assert not (data_dir / "orchestrator" / "token").exists()
    async with httpx.AsyncClient(base_url=base) as http:
        ok = await http.get("/kernel/info", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    assert await up.stop() == 0


async def test_generated_token_is_stored_and_reused(spawn_agentos, data_dir):
    up, _, first = await start_up(spawn_agentos, data_dir)
    assert await up.stop() == 0
    assert (data_dir / "orchestrator" / "token").read_text().strip() == first
    again, _, second = await start_up(spawn_agentos, data_dir)
    assert second == first
    assert await again.stop() == 0


async def test_up_exits_nonzero_and_cleans_up_if_the_web_tier_dies(spawn_agentos, data_dir):
    up, _, _ = await start_up(spawn_agentos, data_dir)
    (child,) = up.children()
    os.kill(child, signal.SIGKILL)
    with trio.fail_after(30):
        status = await up.process.wait()
    assert status == 1
    await trio.sleep(0.1)
    assert "the web tier exited on its own" in up.stderr.decode()
    assert_clean(data_dir, up)


async def test_a_second_up_on_the_same_data_dir_is_refused(spawn_agentos, data_dir):
    up, base, _ = await start_up(spawn_agentos, data_dir)
    second = await run_agentos("up", "--port", "0", env=up_env(data_dir))
    assert second.returncode == 1
    assert b"a kernel is already serving" in second.stderr
    assert b"Traceback" not in second.stderr
    async with httpx.AsyncClient(base_url=base) as http:  # the first is unharmed
        assert (await http.get("/health")).json()["status"] == "healthy"
    assert await up.stop() == 0
    assert_clean(data_dir, up)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGENTOS_PORT": "not-a-port"}, "invalid configuration: --port or AGENTOS_PORT: Input"),
        ({"AGENTOS_TOKEN": "short"}, "invalid configuration: AGENTOS_TOKEN: must be at least 16"),
    ],
)
async def test_bad_configuration_is_a_usage_error(data_dir, env, message):
    result = await run_agentos("up", env=up_env(data_dir, **env))
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


@pytest.mark.skipif(not is_root(), reason="choosing the web tier's user needs root")
async def test_keeping_root_for_the_web_tier_is_explicit_and_warned(spawn_agentos, data_dir):
    up, _, _ = await start_up(spawn_agentos, data_dir, "--orchestrator-user", "root")
    (child,) = up.children()
    assert uid_of(child) == 0
    assert "the privilege boundary is off" in up.stderr.decode()
    assert await up.stop() == 0
    assert_clean(data_dir, up)


@pytest.mark.skipif(not is_root(), reason="choosing the web tier's user needs root")
async def test_an_unknown_web_tier_user_is_a_usage_error(data_dir):
    result = await run_agentos(
        "up", "--orchestrator-user", "no-such-user-x", env=agentos_env(data_dir)
    )
    assert result.returncode == 2
    assert b"no such user: no-such-user-x" in result.stderr


@pytest.mark.skipif(not is_root(), reason="needs root to start a process as another user")
async def test_up_as_an_ordinary_user(spawn_agentos, data_dir):
    user = drop_user()
    if user is None:
        pytest.skip("no unprivileged user can read this checkout's Python and code")
    os.chown(data_dir, user.uid, user.gid)
    up = await spawn_agentos("up", "--port", "0", env=agentos_env(data_dir), uid=user.uid)
    match = await up.wait_for_output(URL)
    (child,) = up.children()
    assert uid_of(up.pid) == uid_of(child) == user.uid
    socket = data_dir / "run" / "kernel.sock"
    assert (socket.stat().st_uid, socket.stat().st_mode & 0o777) == (user.uid, 0o600)
    async with httpx.AsyncClient(base_url=match["base"]) as http:
        assert (await http.get("/health")).json()["kernel"]["connected"] is True
    assert await up.stop() == 0
    assert_clean(data_dir, up)


async def test_the_web_tier_leaves_when_up_is_killed(spawn_agentos, data_dir):
    up, base, _ = await start_up(spawn_agentos, data_dir)
    (child,) = up.children()
    up.process.kill()  # SIGKILL: no chance to stop its child
    await up.process.wait()
    with trio.fail_after(20):
        while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
            await trio.sleep(0.05)
    # A new `up` takes over the data directory (the dead kernel's socket is stale).
    again, base, _ = await start_up(spawn_agentos, data_dir)
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/health")).json()["status"] == "healthy"
    assert await again.stop() == 0
    assert_clean(data_dir, again)


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


async def test_a_relative_data_dir_means_the_same_to_both_tiers(spawn_agentos, data_dir):
    up = await spawn_agentos(
        "up", "--port", "0", "--data-dir", "rel", env=up_env(data_dir), cwd=data_dir
    )
    base = (await up.wait_for_output(URL))["base"]
    absolute = data_dir / "rel"
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/health")).json()["kernel"]["connected"] is True
    record = json.loads((absolute / "run" / "kernel.json").read_text())
    assert record["socket"] == str(absolute / "run" / "kernel.sock")
    assert (absolute / "orchestrator" / "token").is_file()
    assert f"Admin token: in {absolute}/orchestrator/admin-token" in up.stdout.decode()
    found = await run_agentos("call", "sys.ping", env=agentos_env(absolute))  # from cwd /
    assert found.returncode == 0
    assert await up.stop() == 0
    assert_clean(absolute, up)


async def test_a_port_in_use_is_a_clear_error(data_dir):
    with trio.socket.socket() as busy:
        await busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        web = await run_agentos("orchestrator", "--port", port, env=agentos_env(data_dir))
        assert web.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}: address already in use" in web.stderr.decode()
        assert b"Traceback" not in web.stderr
        up = await run_agentos("up", "--port", port, env=up_env(data_dir))
    stderr = up.stderr.decode()
    assert up.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in stderr  # the child's
    assert "the web tier failed to start (exit status 1)" in stderr
    assert "Traceback" not in stderr
    assert os.listdir(data_dir / "run") == []


async def test_a_signal_during_start_up_stops_everything(spawn_agentos, data_dir):
    up = await spawn_agentos("up", "--port", "0", env=up_env(data_dir))
    await up.wait_for_output(r"kernel \S+ serving on", stderr=True)
    children = up.children()
    up.process.send_signal(signal.SIGTERM)  # the web tier is still importing its modules
    with trio.fail_after(30):
        assert await up.process.wait() == 0
    await trio.sleep(0.1)
    assert "AgentOS desktop" not in up.stdout.decode()
    assert_clean(data_dir, up)
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


async def test_a_data_dir_too_deep_for_a_socket_is_a_usage_error(data_dir):
    deep = data_dir / ("d" * 100)
    result = await run_agentos("up", env=up_env(data_dir, AGENTOS_DATA_DIR=str(deep)))
    assert result.returncode == 2
    assert "choose a shorter data directory" in result.stderr.decode()
    assert b"Traceback" not in result.stderr


async def test_a_data_dir_that_cannot_exist_is_a_clear_error(data_dir):
    result = await run_agentos(
        "kernel", "--data-dir", "/dev/null/agentos", env=agentos_env(data_dir)
    )
    assert result.returncode == 1
    assert "Not a directory: '/dev/null/agentos'" in result.stderr.decode()
    assert b"Traceback" not in result.stderr
