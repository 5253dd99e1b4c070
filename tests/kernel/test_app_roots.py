"""Apps' own directories: /storage/apps/<app> in the kernel, /data in each of the app's
containers (each its own uid), one quota for both, kept across kernel restarts."""

import os
from pathlib import Path

import pytest

from kernel.abi import ErrorCode, SyscallError
from kernel.client import open_kernel_client
from kernel.vfs import APP_GID_BASE
from tests._containers import LOOP_DEVICES
from tests._support import is_root

pytestmark = pytest.mark.skipif(not is_root(), reason="containers and mounts need root")

SLEEP = {"argv": ["sleep", "60"]}
MiB = 1 << 20


@pytest.fixture
async def kernel(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        yield client


async def spawn(kernel, app_id, **args):
    return await kernel.call(
        "proc.spawn", {"name": "app", "app_id": app_id, "command": SLEEP, **args}
    )


async def sh(kernel, pid, script):
    out = bytearray()
    argv = ["sh", "-c", script]
    async with kernel.stream("proc.exec", {"pid": pid, "command": {"argv": argv}}) as stream:
        async for item in stream:
            out.extend(item["data"])
        result = stream.result
    return result["exit_code"], out.decode()


def mounted(path: Path) -> bool:
    return path.is_mount()


async def test_an_apps_containers_and_the_kernel_share_its_directory(kernel, running_kernel):
    first = await spawn(kernel, "notes")
    second = await spawn(kernel, "notes")
    code, out = await sh(kernel, first["pid"], "umask 077; echo one > /data/a.txt; id -u")
    assert code == 0
    first_uid = int(out)
    assert (await kernel.call("fs.read", {"path": "/storage/apps/notes/a.txt"}))["data"] == b"one\n"
    await kernel.call("fs.write", {"path": "/storage/apps/notes/b.txt", "data": b"two\n"})
    await kernel.call("fs.mkdir", {"path": "/storage/apps/notes/dir"})
    code, out = await sh(
        kernel,
        second["pid"],
        "cat /data/b.txt /data/a.txt && echo three >> /data/a.txt && echo x > /data/dir/c"
        " && echo four >> /data/b.txt && id -u",
    )
    assert code == 0, out
    assert out.startswith("two\none\n")
    assert int(out.splitlines()[-1]) != first_uid  # each container its own uid
    read = await kernel.call("fs.read", {"path": "/storage/apps/notes/a.txt"})
    assert read["data"] == b"one\nthree\n"
    read = await kernel.call("fs.read", {"path": "/storage/apps/notes/b.txt"})
    assert read["data"] == b"two\nfour\n"
    root = running_kernel.settings.layout.storage_dir / "apps" / "notes"
    gid = root.stat().st_gid
    assert gid >= APP_GID_BASE
    assert (root / "dir" / "c").stat().st_gid == gid  # setgid: the app's group throughout


async def test_another_app_sees_none_of_it(kernel):
    notes = await spawn(kernel, "notes")
    todo = await spawn(kernel, "todo")
    assert (await sh(kernel, notes["pid"], "echo secret > /data/s"))[0] == 0
    code, out = await sh(kernel, todo["pid"], "ls -A /data; cat /data/s")
    assert code != 0
    assert "secret" not in out
    listing = await kernel.call("fs.list", {"path": "/storage/apps/todo"})
    assert listing["entries"] == []


async def test_a_process_without_an_app_keeps_a_private_data(kernel):
    notes = await spawn(kernel, "notes")
    assert (await sh(kernel, notes["pid"], "echo mine > /data/m"))[0] == 0
    loner = await kernel.call("proc.spawn", {"name": "loner", "command": SLEEP})
    code, out = await sh(kernel, loner["pid"], "ls -A /data")
    assert (code, out) == (0, "")


@pytest.mark.skipif(not LOOP_DEVICES, reason="no loop devices here for app volumes")
async def test_one_quota_holds_for_the_apps_containers_and_the_kernel(kernel, running_kernel):
    info = await spawn(kernel, "big", limits={"disk": 8 * MiB})
    root = running_kernel.settings.layout.storage_dir / "apps" / "big"
    assert mounted(root)
    code, out = await sh(kernel, info["pid"], "dd if=/dev/zero of=/data/fill bs=1M count=32 2>&1")
    assert code != 0
    assert "No space left" in out
    with pytest.raises(SyscallError) as refused:
        await kernel.call("fs.write", {"path": "/storage/apps/big/more", "data": b"x" * 4 * MiB})
    assert refused.value.code is ErrorCode.ENOSPC
    code, _ = await sh(kernel, info["pid"], "rm /data/fill")
    assert code == 0
    await kernel.call("fs.write", {"path": "/storage/apps/big/more", "data": b"x" * 4 * MiB})


@pytest.mark.skipif(not LOOP_DEVICES, reason="no loop devices here for app volumes")
async def test_files_written_before_a_quota_move_into_the_apps_volume(kernel, running_kernel):
    await kernel.call("fs.mkdir", {"path": "/storage/apps/late", "parents": True})
    await kernel.call("fs.write", {"path": "/storage/apps/late/early.txt", "data": b"kept"})
    info = await spawn(kernel, "late", limits={"disk": 8 * MiB})
    assert mounted(running_kernel.settings.layout.storage_dir / "apps" / "late")
    assert await sh(kernel, info["pid"], "cat /data/early.txt") == (0, "kept")


@pytest.mark.skipif(not LOOP_DEVICES, reason="no loop devices here for app volumes")
async def test_an_apps_files_outlive_the_kernel(running_kernel):
    root = running_kernel.settings.layout.storage_dir / "apps" / "diary"
    async with open_kernel_client(running_kernel.socket) as kernel:
        info = await spawn(kernel, "diary", limits={"disk": 8 * MiB})
        assert (await sh(kernel, info["pid"], "echo day1 > /data/d"))[0] == 0
    gid = root.stat().st_gid
    await running_kernel.stop()
    assert not mounted(root)  # unmounted when the kernel stopped: no loop device held
    assert not os.listdir(root)
    await running_kernel.start()
    assert mounted(root)  # mounted again at start, before any process of the app
    async with open_kernel_client(running_kernel.socket) as kernel:
        assert (await kernel.call("fs.read", {"path": "/storage/apps/diary/d"}))[
            "data"
        ] == b"day1\n"
        info = await spawn(kernel, "diary")
        assert await sh(kernel, info["pid"], "cat /data/d; stat -c %g /data") == (
            0,
            f"day1\n{gid}\n",
        )
