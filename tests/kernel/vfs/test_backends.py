"""LocalFS and MemFS behave alike: one set of tests, run on both."""

import os

import pytest

from kernel.abi import ErrorCode
from kernel.vfs import FileKind, LocalFS, MemFS, WriteMode
from tests.kernel.vfs._helpers import code_of

CAPACITY = 1000


@pytest.fixture(params=["local", "memory"])
def fs(request, tmp_path):
    if request.param == "memory":
        yield MemFS(capacity=CAPACITY)
        return
    backend = LocalFS(tmp_path / "root", capacity=CAPACITY)
    yield backend
    backend.close()


async def test_files_are_binary_safe_and_written_as_asked(fs):
    blob = bytes(range(256))
    assert await fs.write(("a.bin",), blob) == 256
    assert await fs.read(("a.bin",)) == blob
    assert await fs.read(("a.bin",), offset=250) == blob[250:]
    assert await fs.read(("a.bin",), offset=10, size=3) == blob[10:13]
    assert await fs.write(("a.bin",), b"xy", mode=WriteMode.APPEND) == 258
    assert await fs.write(("a.bin",), b"new") == 3
    assert await fs.read(("a.bin",)) == b"new"
    assert await code_of(fs.write(("a.bin",), b"", mode=WriteMode.CREATE)) == ErrorCode.EEXIST
    assert await fs.write_at(("a.bin",), 5, b"!") == 6
    assert await fs.read(("a.bin",)) == b"new\0\0!"
    await fs.truncate(("a.bin",), 2)
    assert await fs.read(("a.bin",)) == b"ne"
    assert await code_of(fs.read(("missing",))) == ErrorCode.ENOENT


async def test_directories_list_stat_move_and_remove(fs):
    await fs.mkdir(("d",))
    await fs.mkdir(("d", "e", "f"), parents=True)
    await fs.write(("d", "x.txt"), b"hello")
    assert await code_of(fs.mkdir(("d",))) == ErrorCode.EEXIST
    assert await code_of(fs.mkdir(("no", "such"))) == ErrorCode.ENOENT
    listed = await fs.list(("d",))
    assert [(e.name, e.kind, e.size) for e in listed] == [
        ("e", FileKind.DIRECTORY, 0), ("x.txt", FileKind.FILE, 5)
    ]  # fmt: skip
    info = await fs.stat(("d", "x.txt"))
    assert (info.kind, info.size) == (FileKind.FILE, 5)
    assert (await fs.stat(())).kind is FileKind.DIRECTORY
    assert await code_of(fs.read(("d",))) == ErrorCode.EISDIR
    assert await code_of(fs.list(("d", "x.txt"))) == ErrorCode.ENOTDIR
    assert await code_of(fs.delete(("d", "e"))) == ErrorCode.EISDIR
    assert await code_of(fs.rmdir(("d",))) == ErrorCode.ENOTEMPTY
    await fs.move(("d", "x.txt"), ("y.txt",))
    assert await code_of(fs.move(("y.txt",), ("d",))) == ErrorCode.EEXIST
    assert await fs.read(("y.txt",)) == b"hello"
    await fs.rmdir(("d",), recursive=True)
    assert [e.name for e in await fs.list(())] == ["y.txt"]
    await fs.delete(("y.txt",))
    assert await fs.list(()) == []
    assert await fs.usage() == 0


async def test_the_capacity_is_a_quota_on_content(fs):
    await fs.write(("a",), b"x" * 600)
    assert await code_of(fs.write(("b",), b"x" * 500)) == ErrorCode.ENOSPC
    assert await code_of(fs.write(("a",), b"x" * 500, mode=WriteMode.APPEND)) == ErrorCode.ENOSPC
    assert await code_of(fs.truncate(("a",), 2000)) == ErrorCode.ENOSPC
    assert await fs.read(("a",)) == b"x" * 600  # a refused write changes nothing
    await fs.write(("a",), b"x" * 900)  # replacing frees the old content first
    assert await fs.usage() == 900
    await fs.mkdir(("d",))
    await fs.write(("d", "b"), b"y" * 100)
    await fs.rmdir(("d",), recursive=True)
    assert await fs.usage() == 900


async def test_the_root_of_a_mount_cannot_be_removed_or_replaced(fs):
    assert await code_of(fs.rmdir(())) == ErrorCode.EPERM
    assert await code_of(fs.delete(())) == ErrorCode.EPERM
    assert await code_of(fs.mkdir(())) == ErrorCode.EEXIST


async def test_a_directory_cannot_move_into_itself(fs):
    await fs.mkdir(("a", "b"), parents=True)
    assert await code_of(fs.move(("a",), ("a", "b", "c"))) == ErrorCode.EINVAL


def test_local_usage_counts_what_is_there_when_opened(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_bytes(b"z" * 123)
    os.link(root / "sub" / "f", root / "g")  # counted once
    backend = LocalFS(root)
    try:
        assert backend._used == 123
    finally:
        backend.close()


async def test_local_rescan_finds_what_others_wrote_into_the_directory(tmp_path):
    backend = LocalFS(tmp_path / "root", capacity=CAPACITY)
    try:
        await backend.write(("mine",), b"x" * 100)
        (tmp_path / "root" / "theirs").write_bytes(b"y" * 50)  # a container, say
        assert await backend.usage() == 100
        assert await backend.rescan() == 150
        assert await code_of(backend.write(("more",), b"z" * 900)) == ErrorCode.ENOSPC
    finally:
        backend.close()
