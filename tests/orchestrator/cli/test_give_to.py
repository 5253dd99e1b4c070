"""Handing the web tier its state directory, as root, when that user may have planted links."""

import os

from orchestrator.cli._up import WebUser, _give_to
from tests._support import needs_root

NOBODY = WebUser(name="nobody", uid=65534, gid=65534)


@needs_root
def test_ownership_is_given_without_following_planted_links(tmp_path):
    state = tmp_path / "state"
    (state / "sub").mkdir(parents=True)
    (state / "token").write_text("secret")
    (state / "sub" / "file").write_text("data")
    outside = tmp_path / "root-file"
    outside.write_text("root's")
    (state / "link-to-file").symlink_to(outside)
    (state / "link-to-dir").symlink_to(tmp_path)
    linked = tmp_path / "root-hardlinked"
    linked.write_text("root's too")
    os.link(linked, state / "hardlink")

    _give_to(state, NOBODY)

    for path in (state, state / "token", state / "sub", state / "sub" / "file"):
        assert path.stat().st_uid == NOBODY.uid, path
    assert os.lstat(state / "link-to-file").st_uid == NOBODY.uid  # the link itself
    assert outside.stat().st_uid == 0
    assert tmp_path.stat().st_uid == 0
    assert linked.stat().st_uid == 0  # another name for someone else's file: left alone
    assert (state.stat().st_mode & 0o777) == 0o700
