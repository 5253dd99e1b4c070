"""fs.* through the call table: mounts, working directories, and path-scoped grants."""

import pytest

from kernel.abi import ErrorCode
from kernel.core import Kernel
from kernel.vfs import LocalFS, VPath
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch


@pytest.fixture
def kernel(tmp_path):
    kernel = Kernel()
    storage = LocalFS(tmp_path / "storage")
    kernel.mounts.mount(VPath("/storage"), storage)
    yield kernel
    storage.close()


@pytest.mark.parametrize("root", ["/tmp", "/storage"])
async def test_files_and_directories_round_trip_on_each_mount(kernel, root):
    fs = lambda call, **args: dispatch(kernel, ADMIN, call, **args)  # noqa: E731
    await fs("fs.mkdir", path=f"{root}/a/b", parents=True)
    assert (await fs("fs.write", path=f"{root}/a/f", data=b"\x00\xffbin"))["size"] == 5
    assert (await fs("fs.write", path=f"{root}/a/f", data=b"!", append=True))["size"] == 6
    assert (await fs("fs.write", path=f"{root}/a/f", data=b"B", offset=1))["size"] == 6
    read = await fs("fs.read", path=f"{root}/a/f")
    assert (read["data"], read["size"], read["eof"]) == (b"\x00Bbin!", 6, True)
    part = await fs("fs.read", path=f"{root}/a/f", offset=1, size=2)
    assert (part["data"], part["eof"]) == (b"Bb", False)
    assert await code_of(kernel, ADMIN, "fs.create", path=f"{root}/a/f") == ErrorCode.EEXIST
    await fs("fs.create", path=f"{root}/a/new", data=b"n")
    await fs("fs.copy", source=f"{root}/a/f", target=f"{root}/a/g")
    await fs("fs.move", source=f"{root}/a/g", target=f"{root}/a/b/h")
    await fs("fs.truncate", path=f"{root}/a/b/h", size=2)
    listed = await fs("fs.list", path=f"{root}/a")
    assert [(e["name"], e["kind"]) for e in listed["entries"]] == [
        ("b", "directory"), ("f", "file"), ("new", "file")
    ]  # fmt: skip
    stat = await fs("fs.stat", path=f"{root}/a/b/h")
    assert (stat["kind"], stat["size"], stat["mount"]) == ("file", 2, root)
    assert (await fs("fs.exists", path=f"{root}/a/b/h"))["exists"] is True
    assert (await fs("fs.exists", path=f"{root}/a/f/under-a-file"))["exists"] is False
    await fs("fs.delete", path=f"{root}/a/new")
    assert await code_of(kernel, ADMIN, "fs.rmdir", path=f"{root}/a") == ErrorCode.ENOTEMPTY
    await fs("fs.rmdir", path=f"{root}/a", recursive=True)
    assert (await fs("fs.exists", path=f"{root}/a"))["exists"] is False


async def test_the_root_lists_the_mounts_and_nothing_else_exists(kernel):
    listed = await dispatch(kernel, ADMIN, "fs.list", path="/")
    assert [e["name"] for e in listed["entries"]] == ["cache", "storage", "tmp"]
    assert await code_of(kernel, ADMIN, "fs.read", path="/etc/passwd") == ErrorCode.ENOENT
    assert await code_of(kernel, ADMIN, "fs.read", path="/tmp/../etc/x") == ErrorCode.EINVAL
    mounts = (await dispatch(kernel, ADMIN, "fs.mounts"))["mounts"]
    assert [(m["point"], m["kind"]) for m in mounts] == [
        ("/cache", "memory"), ("/storage", "local"), ("/tmp", "memory")
    ]  # fmt: skip


async def test_a_move_across_mounts_copies_then_removes(kernel):
    await dispatch(kernel, ADMIN, "fs.write", path="/tmp/x", data=b"payload")
    await dispatch(kernel, ADMIN, "fs.move", source="/tmp/x", target="/storage/x")
    assert (await dispatch(kernel, ADMIN, "fs.read", path="/storage/x"))["data"] == b"payload"
    assert (await dispatch(kernel, ADMIN, "fs.exists", path="/tmp/x"))["exists"] is False


async def test_grants_reach_only_their_paths(kernel):
    notes = "/storage/apps/notes"
    await dispatch(kernel, ADMIN, "fs.mkdir", path=notes, parents=True)
    await dispatch(kernel, ADMIN, "fs.mkdir", path="/storage/apps/other")
    await dispatch(kernel, ADMIN, "fs.write", path="/storage/apps/other/secret", data=b"s")
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="notes", app_id="notes")
    caller = as_process(
        app["pid"], f"write_file:{notes}", f"read_file:{notes}", f"list_directory:{notes}",
        "system_info",
    )  # fmt: skip
    await dispatch(kernel, caller, "fs.write", path=f"{notes}/todo", data=b"buy milk")
    assert (await dispatch(kernel, caller, "fs.read", path=f"{notes}/todo"))["data"] == b"buy milk"
    for call, args in [
        ("fs.read", {"path": "/storage/apps/other/secret"}),
        ("fs.read", {"path": "/storage/apps/notesx"}),
        ("fs.write", {"path": "/tmp/x", "data": b""}),
        ("fs.list", {"path": "/storage/apps"}),
        ("fs.copy", {"source": "/storage/apps/other/secret", "target": f"{notes}/stolen"}),
        ("fs.move", {"source": f"{notes}/todo", "target": "/tmp/todo"}),
        ("fs.delete", {"path": f"{notes}/todo"}),  # no delete_file at all
    ]:
        assert await code_of(kernel, caller, call, **args) == ErrorCode.EPERM, call
    text = kernel.metrics.render().decode()
    assert 'agentos_syscall_denials_total{call="fs.read",capability="ownership"} 2.0' in text


async def test_relative_paths_go_from_the_working_directory(kernel):
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="app")
    caller = as_process(app["pid"], "read_file", "write_file", "create_file", "system_info")
    await dispatch(kernel, caller, "fs.mkdir", path="/tmp/work")
    assert (await dispatch(kernel, caller, "fs.cwd_set", path="/tmp/work"))["cwd"] == "/tmp/work"
    await dispatch(kernel, caller, "fs.write", path="notes.txt", data=b"here")
    assert (await dispatch(kernel, ADMIN, "fs.read", path="/tmp/work/notes.txt"))["data"] == b"here"
    assert (await dispatch(kernel, caller, "fs.cwd_get"))["cwd"] == "/tmp/work"
    assert await code_of(kernel, caller, "fs.cwd_set", path="notes.txt") == ErrorCode.ENOTDIR
    assert await code_of(kernel, caller, "fs.cwd_set", path="missing") == ErrorCode.ENOENT
    assert await code_of(kernel, caller, "fs.cwd_set", path="..") == ErrorCode.EINVAL


async def test_memory_mounts_are_for_administrators_and_keep_their_capacity(kernel):
    await dispatch(kernel, ADMIN, "fs.mount", point="/small", capacity=10)
    await dispatch(kernel, ADMIN, "fs.write", path="/small/a", data=b"x" * 10)
    assert await code_of(kernel, ADMIN, "fs.write", path="/small/b", data=b"y") == ErrorCode.ENOSPC
    info = (await dispatch(kernel, ADMIN, "fs.mounts"))["mounts"]
    assert {m["point"]: m["used_bytes"] for m in info}["/small"] == 10
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="app")
    caller = as_process(app["pid"], "system_info")
    assert await code_of(kernel, caller, "fs.mount", point="/mine", capacity=1) == ErrorCode.EPERM
    assert await code_of(kernel, caller, "fs.unmount", path="/small") == ErrorCode.EPERM
    assert await code_of(kernel, ADMIN, "fs.unmount", path="/storage") == ErrorCode.EINVAL
    await dispatch(kernel, ADMIN, "fs.unmount", path="/small")
    assert await code_of(kernel, ADMIN, "fs.read", path="/small/a") == ErrorCode.ENOENT
    await dispatch(kernel, ADMIN, "fs.mount", point="/ro", capacity=10, read_only=True)
    assert await code_of(kernel, ADMIN, "fs.write", path="/ro/a", data=b"") == ErrorCode.EPERM


async def test_a_copy_that_runs_out_of_room_leaves_no_half_file(kernel):
    piece = b"x" * (8 << 20)  # the most one write takes: the copy goes in pieces too
    await dispatch(kernel, ADMIN, "fs.write", path="/tmp/big", data=piece)
    await dispatch(kernel, ADMIN, "fs.write", path="/tmp/big", data=piece[: 4 << 20], append=True)
    await dispatch(kernel, ADMIN, "fs.mount", point="/small", capacity=10 << 20)
    copy = code_of(kernel, ADMIN, "fs.copy", source="/tmp/big", target="/small/big")
    assert await copy == ErrorCode.ENOSPC
    assert (await dispatch(kernel, ADMIN, "fs.exists", path="/small/big"))["exists"] is False
    info = (await dispatch(kernel, ADMIN, "fs.mounts"))["mounts"]
    assert {m["point"]: m["used_bytes"] for m in info}["/small"] == 0
