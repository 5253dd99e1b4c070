"""The warm pool for real: filled ahead, commands handed in after creation, drained at the end."""

import json
import os

import pytest
import trio

from sandbox.oci.spec import ProcessSpec
from sandbox.pool import WarmPool
from sandbox.runtime import Outcome

pytestmark = pytest.mark.v2vm


def read_all(fd):
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def wait_until(predicate, timeout=30):
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


@pytest.fixture
async def pool(nursery, runtime, policy):
    pool = await nursery.start(WarmPool(runtime, policy, size=2).run)
    await wait_until(lambda: pool.created >= 2)
    return pool


async def run_taken(pool, process):
    prepared = await pool.take(process)
    try:
        await prepared.container.start()
        status = await prepared.container.wait()
        out, err = read_all(prepared.stdout), read_all(prepared.stderr)
    finally:
        await prepared.discard()
    return status, out, err


async def test_a_taken_sandbox_runs_exactly_the_given_command(pool):
    awkward = ["a b", "'quoted'", '"double"', "$HOME", "`id`", "semi;colon", "new\nline", "*", ""]
    code = (
        "import json, os, sys; "
        "print(json.dumps([sys.argv[1:], os.getcwd(), os.environ.get('APP')]))"
    )
    status, out, _ = await run_taken(
        pool, ProcessSpec(["python3", "-c", code, *awkward], env={"APP": "x y"}, cwd="/tmp")
    )
    assert status.code == 0
    assert json.loads(out) == [awkward, "/tmp", "x y"]
    assert pool.taken_warm == 1


async def test_the_environment_is_the_sandboxes_not_the_launchers(pool):
    _, out, _ = await run_taken(pool, ProcessSpec(["env"]))
    names = {line.split("=", 1)[0] for line in out.decode().splitlines()}
    assert names == {"PATH", "HOME", "LANG", "TMPDIR"}


async def test_taking_refills_and_an_empty_pool_makes_one_on_the_spot(pool):
    first = await pool.take(ProcessSpec(["true"]))
    second = await pool.take(ProcessSpec(["true"]))
    third = await pool.take(ProcessSpec(["true"]))  # the refill has had no time: cold
    assert (pool.taken_warm, pool.taken_cold) == (2, 1)
    for prepared in (first, second, third):
        await prepared.discard()
    await wait_until(lambda: pool.created >= 5)  # two filled, one cold, two refilled


async def test_a_missing_command_fails_like_a_shell(pool):
    status, _, err = await run_taken(pool, ProcessSpec(["no-such-command"]))
    assert status.code == 127
    assert b"no-such-command" in err


async def test_runs_can_take_from_the_pool(run, pool):
    result, out = await run(["sh", "-c", "echo warm; exit 5"], pool=pool)
    assert (result.status, result.exit_code, bytes(out.stdout)) == (Outcome.EXITED, 5, b"warm\n")
    timed_out, _ = await run(["sleep", "30"], pool=pool, time_limit=0.3)
    assert timed_out.status is Outcome.TIMEOUT
    assert pool.taken_warm + pool.taken_cold == 2


async def test_stopping_the_pool_deletes_what_it_held(runtime, policy):
    async with trio.open_nursery() as nursery:
        pool = await nursery.start(WarmPool(runtime, policy, size=3).run)
        await wait_until(lambda: pool.created >= 3)
        assert len(await runtime.list_ids()) == 3
        nursery.cancel_scope.cancel()
    assert await runtime.list_ids() == []
    assert list(runtime.bundles.iterdir()) == []
    assert list((runtime.state_dir / "launch").iterdir()) == []
    assert runtime.owned() == {}


async def test_a_stopped_pool_hands_nothing_out(runtime, policy):
    from sandbox.errors import FailedPreconditionError  # noqa: PLC0415

    pool = WarmPool(runtime, policy, size=1)
    with pytest.raises(FailedPreconditionError, match="not running"):
        await pool.take(ProcessSpec(["true"]))


async def test_the_creators_umask_does_not_reach_a_pooled_sandbox(runtime, policy):
    old = os.umask(0o077)
    try:
        async with trio.open_nursery() as nursery:
            pool = await nursery.start(WarmPool(runtime, policy, size=1).run)
            status, out, err = await run_taken(pool, ProcessSpec(["echo", "launched"]))
            nursery.cancel_scope.cancel()
    finally:
        os.umask(old)
    assert (status.code, out, err) == (0, b"launched\n", b"")
