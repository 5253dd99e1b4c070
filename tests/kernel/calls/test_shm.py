"""shm.* through the call table and over a real socket: access, pages shared, release."""

import mmap
import os

import pytest
import trio

from kernel.abi import ErrorCode
from kernel.client import agentos_kernel
from kernel.core import Kernel
from kernel.ipc import SEGMENTS_PER_PROCESS, ShmTable
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch

IPC = ("send_message", "receive_message", "spawn_process", "system_info")


async def process(kernel, name="p", app_id=None, parent=None):
    info = await dispatch(
        kernel, ADMIN, "proc.spawn", name=name, app_id=app_id, parent=parent,
        capabilities=list(IPC),
    )  # fmt: skip
    return as_process(info["pid"], *IPC)


async def test_who_may_attach_and_how():
    kernel = Kernel()
    owner = await process(kernel, "owner", app_id="notes")
    child = await process(kernel, "child", parent=owner.pid)
    peer = await process(kernel, "peer", app_id="notes")
    stranger = await process(kernel, "stranger", app_id="mail")
    shm = (await dispatch(kernel, owner, "shm.create", size=4096, app_access="read"))["shm_id"]
    for caller in (owner, child):
        assert (await dispatch(kernel, caller, "shm.attach", shm_id=shm))["read_only"] is False
    assert await code_of(kernel, peer, "shm.attach", shm_id=shm) == ErrorCode.EPERM
    await dispatch(kernel, peer, "shm.attach", shm_id=shm, read_only=True)
    assert await code_of(
        kernel, stranger, "shm.attach", shm_id=shm, read_only=True
    ) == ErrorCode.EPERM  # fmt: skip
    await dispatch(kernel, owner, "shm.write", shm_id=shm, offset=10, data=b"shared")
    read = await dispatch(kernel, peer, "shm.read", shm_id=shm, offset=10, size=6)
    assert read["data"] == b"shared"
    assert await code_of(kernel, peer, "shm.write", shm_id=shm, data=b"x") == ErrorCode.EPERM
    assert await code_of(
        kernel, owner, "shm.read", shm_id=shm, offset=4090, size=10
    ) == ErrorCode.EINVAL  # fmt: skip
    info = (await dispatch(kernel, owner, "shm.stats", shm_id=shm))["segments"][0]
    assert info["attached"] == {str(owner.pid): "write", str(child.pid): "write",
                                str(peer.pid): "read"}  # fmt: skip
    assert await code_of(kernel, peer, "shm.destroy", shm_id=shm) == ErrorCode.EPERM
    assert (await dispatch(kernel, stranger, "shm.stats"))["segments"] == []
    await dispatch(kernel, peer, "shm.detach", shm_id=shm)
    assert await code_of(kernel, peer, "shm.read", shm_id=shm, size=1) == ErrorCode.EPERM


async def test_segments_are_bounded_and_go_with_their_creator():
    kernel = Kernel()
    owner = await process(kernel)
    for _ in range(SEGMENTS_PER_PROCESS):
        await dispatch(kernel, owner, "shm.create", size=1)
    assert await code_of(kernel, owner, "shm.create", size=1) == ErrorCode.EMFILE
    assert kernel.segments.reserved == SEGMENTS_PER_PROCESS
    await dispatch(kernel, ADMIN, "proc.kill", pid=owner.pid)
    assert (kernel.segments.segments(), kernel.segments.reserved) == ([], 0)


async def test_an_attached_descriptor_maps_the_very_same_pages(running_kernel):
    kernel = running_kernel.kernel
    owner = await process(kernel)
    shm = (await dispatch(kernel, owner, "shm.create", size=8192))["shm_id"]

    def attach_and_write(read_only):
        with agentos_kernel.connect(str(running_kernel.socket)) as client:  # as the admin
            pages = client.attach_shm(shm, read_only=read_only)
            if not read_only:
                pages[100:110] = b"zero copy!"
            seen = bytes(pages[100:110])
            pages.close()
            return seen

    assert await trio.to_thread.run_sync(attach_and_write, False) == b"zero copy!"
    assert (await dispatch(kernel, ADMIN, "shm.read", shm_id=shm, offset=100, size=10))[
        "data"
    ] == b"zero copy!"
    await dispatch(kernel, ADMIN, "shm.write", shm_id=shm, offset=100, data=b"ZERO")
    assert await trio.to_thread.run_sync(attach_and_write, True) == b"ZERO copy!"


def test_a_read_only_descriptor_cannot_map_writable():
    table = ShmTable()
    segment = table.create(creator=1, app_id=None, size=4096, app_access="none")
    fd = table.descriptor(segment, read_only=True)
    try:
        with pytest.raises(PermissionError):
            mmap.mmap(fd, 4096, access=mmap.ACCESS_WRITE)
        with mmap.mmap(fd, 4096, access=mmap.ACCESS_READ) as pages:
            assert bytes(pages[:4]) == b"\0\0\0\0"
    finally:
        os.close(fd)
        table.destroy(segment)
