"""Shared volumes: a group's directory (setgid, default ACL), with a quota an ext4 image
made once, files already there moved in, nothing lost when they do not fit."""

import os
import stat
from pathlib import Path

import pytest

from sandbox.runtime import VolumeError, close_shared_volume, open_shared_volume
from tests._containers import LOOP_DEVICES
from tests._support import is_root

pytestmark = [
    pytest.mark.skipif(not is_root(), reason="chown and mount need root"),
    pytest.mark.skipif(not LOOP_DEVICES, reason="no loop devices here for volume images"),
]

GID = 1_070_002
MiB = 1 << 20


@pytest.fixture
async def volume(data_dir):
    directory = data_dir / "app"  # the members can reach it: data_dir is 0755
    yield directory
    await close_shared_volume(directory)


def made_by(uid: int, path: Path, data: bytes, *, umask: int = 0o077) -> None:
    """Write ``path`` as ``uid`` with the group ``GID``, like a sandbox of the app would."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([GID])
            os.setgid(uid)
            os.setuid(uid)
            os.umask(umask)
            path.write_bytes(data)
        except BaseException:  # noqa: BLE001 - whatever failed, the child only exits
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_a_group_volume_gives_every_member_what_the_owner_has(volume):
    assert await open_shared_volume(volume, gid=GID) is None  # no image: no quota
    info = volume.stat()
    assert (info.st_uid, info.st_gid) == (0, GID)
    assert stat.S_IMODE(info.st_mode) == 0o2770
    made_by(1_070_100, volume / "a", b"one", umask=0o077)
    made = (volume / "a").stat()
    assert (made.st_gid, stat.S_IMODE(made.st_mode) & 0o070) == (GID, 0o060)  # umask or not
    made_by(1_070_101, volume / "a", b"two")  # another member rewrites it
    assert (volume / "a").read_bytes() == b"two"


async def test_an_image_is_made_once_and_keeps_its_files(volume, tmp_path):
    image = tmp_path / "app.img"
    assert await open_shared_volume(volume, gid=GID, image=image, quota=8 * MiB) == 8 * MiB
    assert volume.is_mount()
    (volume / "kept").write_bytes(b"x")
    assert await open_shared_volume(volume, gid=GID, image=image, quota=8 * MiB) == 8 * MiB
    await close_shared_volume(volume)
    assert not volume.is_mount()
    assert list(volume.iterdir()) == []
    # Mounted again as it is: its own size, whatever quota is asked now.
    assert await open_shared_volume(volume, gid=GID, image=image, quota=32 * MiB) == 8 * MiB
    assert (volume / "kept").read_bytes() == b"x"


async def test_files_already_there_move_into_a_new_image_and_become_the_groups(volume, tmp_path):
    (volume / "sub").mkdir(parents=True, mode=0o700)
    (volume / "sub" / "f").write_bytes(b"before")
    (volume / "sub" / "f").chmod(0o600)
    image = tmp_path / "app.img"
    await open_shared_volume(volume, gid=GID, image=image, quota=8 * MiB)
    assert volume.is_mount()
    moved = volume / "sub" / "f"
    assert moved.read_bytes() == b"before"
    assert (moved.stat().st_gid, stat.S_IMODE(moved.stat().st_mode)) == (GID, 0o660)
    assert (volume / "sub").stat().st_mode & stat.S_ISGID
    await close_shared_volume(volume)
    assert list(volume.iterdir()) == []  # the originals went, once copied


async def test_files_that_do_not_fit_stay_where_they_were(volume, tmp_path):
    volume.mkdir()
    (volume / "big").write_bytes(os.urandom(4 * MiB))
    image = tmp_path / "app.img"
    with pytest.raises(VolumeError, match="do not fit"):
        await open_shared_volume(volume, gid=GID, image=image, quota=2 * MiB)
    assert not volume.is_mount()
    assert (volume / "big").stat().st_size == 4 * MiB
    assert not image.exists()


async def test_files_hidden_under_an_existing_image_are_refused(volume, tmp_path):
    image = tmp_path / "app.img"
    await open_shared_volume(volume, gid=GID, image=image, quota=8 * MiB)
    await close_shared_volume(volume)
    (volume / "stray").write_bytes(b"written while unmounted")
    with pytest.raises(VolumeError, match="files of its own"):
        await open_shared_volume(volume, gid=GID, image=image)
    assert not volume.is_mount()
