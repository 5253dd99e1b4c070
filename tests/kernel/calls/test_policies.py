"""policy.*: the built-ins and the administrators' own, who may change them, and that a
change reaches new processes and survives on disk."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi import ErrorCode, SyscallError
from kernel.core import Kernel
from kernel.policies import PolicyStore
from sandbox.policy import BUILTIN_POLICIES
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch

TIGHT = {
    "name": "tight",
    "description": "files of its own, little memory",
    "capabilities": ["read_file:/storage/apps/{app}", "system_info"],
    "limits": {"memory": "64M", "pids": 16},
}


async def test_the_builtins_are_listed_and_cannot_change():
    kernel = Kernel()
    listing = await dispatch(kernel, ADMIN, "policy.list")
    assert [e["name"] for e in listing["policies"]] == list(BUILTIN_POLICIES)
    assert all(e["builtin"] and e["in_use"] == 0 for e in listing["policies"])
    standard = await dispatch(kernel, ADMIN, "policy.get", name="standard")
    assert standard["policy"] == BUILTIN_POLICIES["standard"].model_dump(mode="json")
    replaced = {**standard["policy"], "description": "mine now"}
    assert await code_of(kernel, ADMIN, "policy.put", policy=replaced) == ErrorCode.EPERM
    assert await code_of(kernel, ADMIN, "policy.delete", name="standard") == ErrorCode.EPERM
    assert await code_of(kernel, ADMIN, "policy.get", name="nope") == ErrorCode.ENOENT


async def test_only_the_administrators_write_policies():
    kernel = Kernel()
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="app")
    caller = as_process(app["pid"], "system_info")
    assert len((await dispatch(kernel, caller, "policy.list"))["policies"]) == 3
    assert await code_of(kernel, caller, "policy.put", policy=TIGHT) == ErrorCode.EPERM
    await dispatch(kernel, ADMIN, "policy.put", policy=TIGHT)
    assert await code_of(kernel, caller, "policy.delete", name="tight") == ErrorCode.EPERM
    assert await code_of(kernel, as_process(app["pid"]), "policy.list") == ErrorCode.EPERM


async def test_an_invalid_policy_is_refused_naming_each_field():
    kernel = Kernel()
    bad = {**TIGHT, "limits": {"memory": "lots", "pids": 0}, "network": {"mode": "wide"}}
    with pytest.raises(SyscallError) as refused:
        await dispatch(kernel, ADMIN, "policy.put", policy=bad)
    assert refused.value.code is ErrorCode.EINVAL
    for field in ("limits.memory", "limits.pids", "network.mode"):
        assert field in refused.value.message
    assert len((await dispatch(kernel, ADMIN, "policy.list"))["policies"]) == 3


async def test_a_policy_reaches_new_processes_and_is_deleted_only_when_unused():
    kernel = Kernel()
    put = await dispatch(kernel, ADMIN, "policy.put", policy=TIGHT)
    assert put["created"]
    assert put["entry"]["policy"]["limits"]["memory"] == 64 << 20
    again = await dispatch(kernel, ADMIN, "policy.put", policy=TIGHT)
    assert not again["created"]
    assert (
        await code_of(kernel, ADMIN, "policy.put", policy=TIGHT, create_only=True)
        == ErrorCode.EEXIST
    )
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="app", app_id="notes", policy="tight")
    assert app["policy"] == "tight"
    assert sorted(app["capabilities"]) == ["read_file:/storage/apps/notes", "system_info"]
    assert (await dispatch(kernel, ADMIN, "policy.get", name="tight"))["in_use"] == 1
    assert await code_of(kernel, ADMIN, "policy.delete", name="tight") == ErrorCode.EBUSY
    await dispatch(kernel, ADMIN, "proc.kill", pid=app["pid"])
    deleted = await dispatch(kernel, ADMIN, "policy.delete", name="tight")
    assert deleted["name"] == "tight"
    assert (
        await code_of(kernel, ADMIN, "proc.spawn", name="app", policy="tight") == ErrorCode.ENOENT
    )
    assert await code_of(kernel, ADMIN, "policy.delete", name="tight") == ErrorCode.ENOENT


async def test_the_administrators_policies_are_kept_on_disk(tmp_path):
    path = tmp_path / "kernel" / "policies.json"
    store = PolicyStore()
    assert store.attach(path) == 0
    await store.put(PolicyStore.parse(TIGHT))
    await store.put(PolicyStore.parse({**TIGHT, "name": "other"}))
    await store.delete("other")
    assert json.loads(path.read_text())["format"] == 1
    reopened = PolicyStore()
    assert reopened.attach(path) == 1
    assert reopened.get("tight") == store.get("tight")
    assert [p.name for p, builtin in reopened.all() if not builtin] == ["tight"]
    assert [p.name for p in tmp_path.joinpath("kernel").iterdir()] == ["policies.json"]


async def test_an_unreadable_file_is_set_aside_not_lost(tmp_path):
    path = tmp_path / "policies.json"
    path.write_text('{"format": 1, "policies": [{"name": "x", "limits": {"pids": -1}}]}')
    store = PolicyStore()
    assert store.attach(path) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("policies.json.unreadable-")]
    assert len(aside) == 1
    assert '"pids": -1' in aside[0].read_text()
    await store.put(PolicyStore.parse(TIGHT))
    assert PolicyStore().attach(path) == 1


@given(name=st.from_regex(r"[a-z][a-z0-9_-]{0,63}", fullmatch=True))
def test_every_valid_name_round_trips_through_the_json_form(name):
    policy = PolicyStore.parse({**TIGHT, "name": name})
    assert PolicyStore.parse(policy.model_dump(mode="json")) == policy
