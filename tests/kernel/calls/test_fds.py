"""fd.* through the call table: offsets, dup, append, open files outliving their names."""

import pytest
import trio

from kernel.abi import ErrorCode
from kernel.core import Kernel
from kernel.vfs import MAX_FDS, LocalFS, VPath
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch

FILES = ("read_file", "write_file", "delete_file", "system_info")


@pytest.fixture
def kernel(tmp_path):
    kernel = Kernel()
    storage = LocalFS(tmp_path / "storage")
    kernel.mounts.mount(VPath("/storage"), storage)
    yield kernel
    storage.close()


async def process(kernel, *grants):
    info = await dispatch(kernel, ADMIN, "proc.spawn", name="p", capabilities=list(grants))
    return as_process(info["pid"], *grants)


@pytest.mark.parametrize("root", ["/tmp", "/storage"])
async def test_offsets_move_with_reads_and_writes_and_dups_share_them(kernel, root):
    me = await process(kernel, *FILES)
    fd = (await dispatch(kernel, me, "fd.open", path=f"{root}/f", mode="w+"))["fd"]
    assert (await dispatch(kernel, me, "fd.write", fd=fd, data=b"hello world"))["offset"] == 11
    assert (await dispatch(kernel, me, "fd.lseek", fd=fd, offset=0))["offset"] == 0
    assert (await dispatch(kernel, me, "fd.read", fd=fd, size=5))["data"] == b"hello"
    twin = (await dispatch(kernel, me, "fd.dup", fd=fd))["fd"]
    assert twin == fd + 1
    read = await dispatch(kernel, me, "fd.read", fd=twin)  # the same offset: after "hello"
    assert (read["data"], read["eof"]) == (b" world", True)
    assert (await dispatch(kernel, me, "fd.lseek", fd=fd, offset=-5, whence="end"))["offset"] == 6
    await dispatch(kernel, me, "fd.dup2", fd=fd, new_fd=7)
    assert (await dispatch(kernel, me, "fd.read", fd=7))["data"] == b"world"
    assert await code_of(kernel, me, "fd.lseek", fd=7, offset=-1) == ErrorCode.EINVAL
    for number in (fd, twin, 7):
        await dispatch(kernel, me, "fd.close", fd=number)
    assert await code_of(kernel, me, "fd.read", fd=fd) == ErrorCode.EBADF


async def test_modes_decide_what_a_descriptor_may_do(kernel):
    me = await process(kernel, *FILES)
    assert await code_of(kernel, me, "fd.open", path="/tmp/none", mode="r") == ErrorCode.ENOENT
    await dispatch(kernel, ADMIN, "fs.write", path="/tmp/log", data=b"one\n")
    reader = (await dispatch(kernel, me, "fd.open", path="/tmp/log"))["fd"]
    assert await code_of(kernel, me, "fd.write", fd=reader, data=b"x") == ErrorCode.EBADF
    appender = (await dispatch(kernel, me, "fd.open", path="/tmp/log", mode="a"))["fd"]
    await dispatch(kernel, me, "fd.write", fd=appender, data=b"two\n")
    assert await code_of(kernel, me, "fd.read", fd=appender) == ErrorCode.EBADF
    flags = await dispatch(kernel, me, "fd.fcntl", fd=appender, append=False)
    assert flags == {"readable": False, "writable": True, "append": False}
    await dispatch(kernel, me, "fd.lseek", fd=appender, offset=0)
    await dispatch(kernel, me, "fd.write", fd=appender, data=b"ONE")
    assert (await dispatch(kernel, ADMIN, "fs.read", path="/tmp/log"))["data"] == b"ONE\ntwo\n"
    assert await code_of(
        kernel, me, "fd.open", path="/tmp/log", mode="w", exclusive=True
    ) == ErrorCode.EEXIST  # fmt: skip
    emptied = (await dispatch(kernel, me, "fd.open", path="/tmp/log", mode="w"))["fd"]
    assert (await dispatch(kernel, ADMIN, "fs.stat", path="/tmp/log"))["size"] == 0
    await dispatch(kernel, me, "fd.close", fd=emptied)


@pytest.mark.parametrize("root", ["/tmp", "/storage"])
async def test_an_open_file_outlives_its_name(kernel, root):
    me = await process(kernel, *FILES)
    await dispatch(kernel, ADMIN, "fs.write", path=f"{root}/doomed", data=b"still here")
    fd = (await dispatch(kernel, me, "fd.open", path=f"{root}/doomed", mode="r+"))["fd"]
    await dispatch(kernel, me, "fs.delete", path=f"{root}/doomed")
    assert (await dispatch(kernel, me, "fd.read", fd=fd))["data"] == b"still here"
    await dispatch(kernel, me, "fd.write", fd=fd, data=b"!")
    await dispatch(kernel, me, "fd.close", fd=fd)
    if root == "/tmp":  # memory: the bytes count until the last descriptor closes
        mounts = (await dispatch(kernel, ADMIN, "fs.mounts"))["mounts"]
        assert {m["point"]: m["used_bytes"] for m in mounts}["/tmp"] == 0


async def test_a_grant_decides_the_modes_a_path_opens_in(kernel):
    await dispatch(kernel, ADMIN, "fs.write", path="/tmp/shared", data=b"data")
    reader = await process(kernel, "read_file:/tmp", "write_file:/tmp/mine")
    fd = (await dispatch(kernel, reader, "fd.open", path="/tmp/shared"))["fd"]
    assert (await dispatch(kernel, reader, "fd.read", fd=fd))["data"] == b"data"
    assert await code_of(kernel, reader, "fd.open", path="/tmp/shared", mode="a") == ErrorCode.EPERM
    assert await code_of(kernel, reader, "fd.open", path="/tmp/other", mode="w") == ErrorCode.EPERM
    await dispatch(kernel, reader, "fd.open", path="/tmp/mine", mode="w+")  # both grants reach
    assert await code_of(kernel, reader, "fd.open", path="/tmp/mine/../x") == ErrorCode.EINVAL
    assert await code_of(kernel, ADMIN, "fd.open", path="/tmp/shared") == ErrorCode.EINVAL


async def test_descriptors_are_bounded_and_closed_when_their_process_exits(kernel):
    me = await process(kernel, *FILES)
    await dispatch(kernel, me, "fd.open", path="/tmp/f", mode="w")
    for _ in range(MAX_FDS - 1):
        await dispatch(kernel, me, "fd.open", path="/tmp/f", mode="r")
    assert await code_of(kernel, me, "fd.open", path="/tmp/f") == ErrorCode.EMFILE
    await dispatch(kernel, me, "fd.write", fd=0, data=b"x" * 100)
    await dispatch(kernel, me, "fs.delete", path="/tmp/f")  # open: its bytes still count
    mounts = (await dispatch(kernel, ADMIN, "fs.mounts"))["mounts"]
    assert {m["point"]: m["used_bytes"] for m in mounts}["/tmp"] == 100
    await dispatch(kernel, ADMIN, "proc.kill", pid=me.pid)
    mounts = (await dispatch(kernel, ADMIN, "fs.mounts"))["mounts"]
    assert {m["point"]: m["used_bytes"] for m in mounts}["/tmp"] == 0


async def test_a_file_the_host_keeps_unwritable_still_opens_for_reading(kernel, tmp_path):
    pinned = tmp_path / "storage" / "pinned"
    pinned.write_bytes(b"read me")
    await trio.run_process(["chattr", "+i", str(pinned)])  # not even root may write it
    try:
        me = await process(kernel, *FILES)
        fd = (await dispatch(kernel, me, "fd.open", path="/storage/pinned"))["fd"]
        assert (await dispatch(kernel, me, "fd.read", fd=fd))["data"] == b"read me"
        assert await code_of(
            kernel, me, "fd.open", path="/storage/pinned", mode="r+"
        ) == ErrorCode.EPERM  # fmt: skip
        await dispatch(kernel, me, "fd.close", fd=fd)
    finally:
        await trio.run_process(["chattr", "-i", str(pinned)])
