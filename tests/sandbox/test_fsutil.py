import os
import stat

import pytest

from sandbox.fsutil import atomic_write


def test_creates_the_file_with_its_mode(tmp_path):
    target = tmp_path / "token"
    atomic_write(target, b"secret\n", mode=0o600)
    assert target.read_bytes() == b"secret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_replaces_an_existing_file_whole(tmp_path):
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    inode = target.stat().st_ino
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != inode  # a new file renamed over, not rewritten in place


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files away")
def test_sets_the_requested_owner(tmp_path):
    target = tmp_path / "owned"
    atomic_write(target, b"x", owner=(65534, 65534))
    st = target.stat()
    assert (st.st_uid, st.st_gid) == (65534, 65534)
