"""No path leaves its mount: symlinks, swapped-in symlinks, hard links, special files."""

import os
import posixpath
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi import ErrorCode, SyscallError, SyscallInvalidArgumentError
from kernel.vfs import LocalFS, MemFS, MountTable, VPath, vpath
from tests.kernel.vfs._helpers import code_of

SECRET = b"the host's own file"


@pytest.fixture
def host(tmp_path):
    """A mount's root, beside a host file nobody may reach through it."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(SECRET)
    backend = LocalFS(tmp_path / "root")
    yield tmp_path, backend
    backend.close()


async def test_symlinks_are_never_followed_anywhere_on_the_path(host):
    tmp, fs = host
    root = tmp / "root"
    (root / "link").symlink_to(tmp / "outside" / "secret")
    (root / "dirlink").symlink_to(tmp / "outside")
    (root / "inner").symlink_to("dirlink/secret")  # relative, through another link
    for parts in [("link",), ("dirlink", "secret"), ("inner",)]:
        assert await code_of(fs.read(parts)) == ErrorCode.EPERM
        assert await code_of(fs.write(parts, b"overwritten")) == ErrorCode.EPERM
    assert await code_of(fs.list(("dirlink",))) == ErrorCode.EPERM
    assert await code_of(fs.mkdir(("dirlink", "new"))) == ErrorCode.EPERM
    assert await code_of(fs.move(("link",), ("dirlink", "moved"))) == ErrorCode.EPERM
    assert (await fs.stat(("link",))).kind == "symlink"  # seen as itself
    await fs.delete(("link",))  # and removable
    assert not (root / "link").is_symlink()
    assert (tmp / "outside" / "secret").read_bytes() == SECRET


async def test_hard_links_and_special_files_are_refused(host):
    tmp, fs = host
    root = tmp / "root"
    os.link(tmp / "outside" / "secret", root / "hard")
    os.mkfifo(root / "fifo")
    assert await code_of(fs.read(("hard",))) == ErrorCode.EPERM
    assert await code_of(fs.write(("hard",), b"x")) == ErrorCode.EPERM
    assert await code_of(fs.read(("fifo",))) == ErrorCode.EPERM  # at once, not blocked
    assert await code_of(fs.write(("fifo",), b"x")) == ErrorCode.EPERM
    assert (tmp / "outside" / "secret").read_bytes() == SECRET


async def test_a_symlink_swapped_in_during_calls_never_leads_out(host):
    tmp, fs = host
    root = tmp / "root"
    (root / "d").mkdir()
    (root / "d" / "secret").write_bytes(b"inside")
    stop = threading.Event()

    def swap():  # d flips between a real directory and a link to the outside
        while not stop.is_set():
            (root / "d").rename(root / "real")
            (root / "d").symlink_to(tmp / "outside")
            (root / "d").unlink()
            (root / "real").rename(root / "d")

    swapper = threading.Thread(target=swap)
    swapper.start()
    seen = set()
    try:
        for _ in range(3000):
            try:
                seen.add(await fs.read(("d", "secret")))
            except SyscallError as exc:
                seen.add(exc.code)
    finally:
        stop.set()
        swapper.join()
    assert SECRET not in seen
    assert b"inside" in seen  # the race was run, not avoided


@given(st.text(alphabet="ab./\0", max_size=30))
def test_paths_are_absolute_clean_and_never_climb(text):
    try:
        path = vpath(text, VPath("/home/x"))
    except SyscallInvalidArgumentError:
        assert ".." in text.split("/") or "\0" in text
        return
    assert path.is_absolute()
    assert not {".", "..", ""} & set(path.parts[1:])
    expected = posixpath.normpath(posixpath.join("/home/x", text)).replace("//", "/")
    assert str(path) == expected


def test_paths_too_long_are_refused():
    with pytest.raises(SyscallInvalidArgumentError, match="at most 255"):
        vpath("/" + "a" * 256)
    with pytest.raises(SyscallInvalidArgumentError, match="at most 4096"):
        vpath("/a" * 2100)


def test_the_deepest_mount_serves_a_path():
    table = MountTable()
    storage, apps, tmp = MemFS(capacity=1), MemFS(capacity=1), MemFS(capacity=1)
    table.mount(VPath("/storage"), storage)
    table.mount(VPath("/storage/apps/notes"), apps)
    table.mount(VPath("/tmp"), tmp)
    assert table.route(VPath("/storage/apps/notes/a/b")) == (
        table.mounts()[1], ("a", "b")
    )  # fmt: skip
    assert table.route(VPath("/storage/apps/notesx"))[0].backend is storage
    assert table.route(VPath("/storage"))[1] == ()
    with pytest.raises(SyscallError) as nowhere:
        table.route(VPath("/etc/passwd"))
    assert nowhere.value.code == ErrorCode.ENOENT
    assert table.points_below(VPath("/")) == ["storage", "tmp"]
    assert table.is_above_mounts(VPath("/"))
    assert not table.is_above_mounts(VPath("/tmp"))
    with pytest.raises(SyscallError) as twice:
        table.mount(VPath("/tmp"), tmp)
    assert twice.value.code == ErrorCode.EEXIST
    table.unmount(VPath("/storage/apps/notes"))
    assert table.route(VPath("/storage/apps/notes/a"))[0].backend is storage
