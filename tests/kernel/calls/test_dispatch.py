from pathlib import PurePosixPath

import pytest
from pydantic import Field

from kernel.abi import (
    CATALOG,
    CallSpec,
    Catalog,
    ErrorCode,
    SyscallError,
    SyscallInvalidArgumentError,
    SyscallPermissionError,
    SyscallUnsupportedError,
    WireModel,
)
from kernel.abi.system import NoArgs, SysPingResult
from kernel.calls import CallTable
from kernel.core import Kernel
from sandbox.capabilities import Capability
from tests.kernel._calls import ADMIN, as_process, dispatch


def test_every_catalog_call_has_a_handler():
    assert Kernel().calls.unbound() == []


def test_tables_report_unbound_calls_and_refuse_foreign_specs():
    orphan = CallSpec(name="test.orphan", summary="", args=NoArgs, result=NoArgs, capability=None)
    table = CallTable(Catalog.of(CATALOG, [orphan]))
    assert table.unbound() == [spec.name for spec in CATALOG] + ["test.orphan"]
    with pytest.raises(ValueError, match="not in this table's catalog"):
        Kernel().calls.bind(orphan, lambda ctx, args: None)


def test_binding_twice_is_an_error():
    kernel = Kernel()
    spec = CATALOG.get("sys.ping")
    with pytest.raises(ValueError, match="bound twice"):
        kernel.calls.bind(spec, lambda ctx, args: None)


async def test_unknown_call_is_enosys():
    with pytest.raises(SyscallUnsupportedError) as info:
        await dispatch(Kernel(), ADMIN, "sys.nothing")
    assert info.value.code == ErrorCode.ENOSYS


async def test_capability_is_checked_before_arguments_are_parsed():
    kernel = Kernel()
    # No system_info: denied even though the arguments are garbage.
    with pytest.raises(SyscallPermissionError, match="system_info"):
        await dispatch(kernel, as_process(5), "proc.info", pid="not a number")


async def test_bad_arguments_are_einval_with_paths():
    with pytest.raises(SyscallInvalidArgumentError) as info:
        await dispatch(Kernel(), ADMIN, "proc.spawn", name="", capabilities=["fly"])
    locs = {d["loc"] for d in info.value.details}
    assert locs == {"args.name", "args.capabilities.0"}


@pytest.mark.parametrize("pid", [True, "1", 1.0, b"1"])
async def test_arguments_of_the_wrong_type_are_refused_not_converted(pid):
    kernel = Kernel()
    await dispatch(kernel, ADMIN, "proc.spawn", name="app")  # pid 1 exists
    with pytest.raises(SyscallInvalidArgumentError) as info:
        await dispatch(kernel, ADMIN, "proc.kill", pid=pid)
    assert [d["loc"] for d in info.value.details] == ["args.pid"]
    assert [p["pid"] for p in (await dispatch(kernel, ADMIN, "proc.list"))["processes"]] == [1]


async def test_calls_without_a_capability_are_open_to_everyone():
    result = await dispatch(Kernel(), as_process(5), "sys.ping", data="hi")
    assert result["data"] == "hi"


async def test_a_process_cannot_grant_capabilities_it_lacks():
    kernel = Kernel()
    parent = await dispatch(kernel, ADMIN, "proc.spawn", name="app", capabilities=["spawn_process"])
    caller = as_process(parent["pid"], Capability.SPAWN_PROCESS)
    with pytest.raises(SyscallPermissionError, match="write_file"):
        await dispatch(kernel, caller, "proc.spawn", name="child", capabilities=["write_file"])
    child = await dispatch(
        kernel, caller, "proc.spawn", name="child", capabilities=["spawn_process"]
    )
    assert child["ppid"] == parent["pid"]


async def test_a_process_may_only_kill_itself_and_its_descendants():
    kernel = Kernel()
    mine = await dispatch(kernel, ADMIN, "proc.spawn", name="mine")
    other = await dispatch(kernel, ADMIN, "proc.spawn", name="other")
    child = await dispatch(kernel, ADMIN, "proc.spawn", name="child", parent=mine["pid"])
    caller = as_process(mine["pid"], Capability.KILL_PROCESS)
    with pytest.raises(SyscallPermissionError):
        await dispatch(kernel, caller, "proc.kill", pid=other["pid"])
    killed = await dispatch(kernel, caller, "proc.kill", pid=child["pid"])
    assert killed["state"] == "exited"
    with pytest.raises(SyscallError) as info:
        await dispatch(kernel, caller, "proc.kill", pid=12345)
    assert info.value.code == ErrorCode.ESRCH


async def test_a_handler_returning_the_wrong_model_is_caught():
    class Other(WireModel):
        x: int = Field(default=1)

    spec = CallSpec(
        name="test.wrong", summary="", args=NoArgs, result=SysPingResult, capability=None
    )

    async def wrong(ctx, args):
        return Other()

    kernel = Kernel(extra_calls=[(spec, wrong)])
    with pytest.raises(TypeError, match="returned Other"):
        await dispatch(kernel, ADMIN, "test.wrong")


async def test_emit_is_refused_on_non_streaming_calls():
    spec = CallSpec(name="test.emits", summary="", args=NoArgs, result=NoArgs, capability=None)

    async def emits(ctx, args):
        await ctx.emit(NoArgs())
        return NoArgs()

    kernel = Kernel(extra_calls=[(spec, emits)])
    with pytest.raises(TypeError, match="not a streaming call"):
        await dispatch(kernel, ADMIN, "test.emits")


async def test_sys_calls_describes_every_call_with_schemas():
    result = await dispatch(Kernel(), ADMIN, "sys.calls")
    by_name = {c["name"]: c for c in result["calls"]}
    assert set(by_name) == {spec.name for spec in CATALOG}
    spawn = by_name["proc.spawn"]
    assert spawn["capability"] == "spawn_process"
    assert spawn["args_schema"]["properties"]["name"]["pattern"]
    assert "pid" in spawn["result_schema"]["properties"]
    assert by_name["sys.ping"]["capability"] is None
    only_proc = await dispatch(Kernel(), ADMIN, "sys.calls", category="proc")
    assert {c["category"] for c in only_proc["calls"]} == {"proc"}


async def test_file_grants_are_scoped_to_the_apps_own_files_by_the_standard_policy():
    kernel = Kernel()
    notes = await dispatch(kernel, ADMIN, "proc.spawn", name="n", app_id="notes", policy="standard")
    assert "write_file:/storage/apps/notes" in notes["capabilities"]
    assert "write_file:/tmp" in notes["capabilities"]
    assert "write_file" not in notes["capabilities"]
    loose = await dispatch(kernel, ADMIN, "proc.spawn", name="x", policy="standard")
    assert not any(c.startswith("write_file:/storage") for c in loose["capabilities"])


async def test_a_child_gets_at_most_the_scopes_its_parent_holds():
    kernel = Kernel()
    held = ["spawn_process", "write_file:/storage/apps/notes"]
    parent = await dispatch(
        kernel, ADMIN, "proc.spawn", name="p", app_id="notes", capabilities=held
    )
    caller = as_process(parent["pid"], *held)
    narrower = await dispatch(
        kernel, caller, "proc.spawn", name="c", capabilities=["write_file:/storage/apps/{app}/c"]
    )
    assert (narrower["app_id"], narrower["capabilities"]) == (
        "notes", ["write_file:/storage/apps/notes/c"]
    )  # fmt: skip
    for wider in ("write_file", "write_file:/storage/apps/other", "write_file:/storage"):
        with pytest.raises(SyscallPermissionError, match="caller lacks") as info:
            await dispatch(kernel, caller, "proc.spawn", name="c", capabilities=[wider])
        assert wider in info.value.message
    with pytest.raises(SyscallPermissionError, match="cannot belong to app 'other'"):
        await dispatch(kernel, caller, "proc.spawn", name="c", app_id="other")
    with pytest.raises(SyscallInvalidArgumentError) as bad:
        await dispatch(kernel, caller, "proc.spawn", name="c", capabilities=["write_file:/a/../b"])
    assert [d["loc"] for d in bad.value.details] == ["args.capabilities.0"]


async def test_a_policy_bounds_the_scopes_even_for_the_admin():
    kernel = Kernel()
    with pytest.raises(SyscallPermissionError, match="does not grant: read_file:/storage"):
        await dispatch(
            kernel, ADMIN, "proc.spawn", name="x", app_id="notes", policy="standard",
            capabilities=["read_file:/storage"],
        )  # fmt: skip
    inside = await dispatch(
        kernel, ADMIN, "proc.spawn", name="x", app_id="notes", policy="standard",
        capabilities=["read_file:/storage/apps/notes/docs"],
    )  # fmt: skip
    assert inside["capabilities"] == ["read_file:/storage/apps/notes/docs"]


def test_a_caller_may_use_a_file_capability_only_inside_its_scopes():
    caller = as_process(3, "read_file:/storage/apps/notes", "write_file:/tmp")
    assert caller.holds(Capability.READ_FILE)
    assert caller.holds(Capability.WRITE_FILE)
    assert caller.may(Capability.READ_FILE, PurePosixPath("/storage/apps/notes/a.txt"))
    assert not caller.may(Capability.READ_FILE, PurePosixPath("/storage/apps/notesx/a.txt"))
    assert not caller.may(Capability.READ_FILE, PurePosixPath("/tmp/a"))
    assert caller.may(Capability.WRITE_FILE, PurePosixPath("/tmp/a"))
    assert ADMIN.may(Capability.DELETE_FILE, PurePosixPath("/"))
