"""Grants: capabilities as held, the file ones scoped by path."""

from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.capabilities import FILE_CAPABILITIES, Capability, Grant, covered, uncovered

P = PurePosixPath


def g(text):
    return Grant.parse(text)


def test_text_round_trips_and_sorts_stably():
    for text in ("read_file", "read_file:/storage/apps/{app}", "write_file:/", "system_info"):
        assert str(g(text)) == text
    assert sorted([g("system_info"), g("read_file:/tmp"), g("read_file")]) == [
        g("read_file"), g("read_file:/tmp"), g("system_info")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("fly", "unknown capability"),
        ("spawn_process:/tmp", "only file capabilities"),
        ("read_file:tmp", "absolute path"),
        ("read_file:", "absolute path"),
        ("read_file:/tmp/", "empty components"),
        ("read_file:/a//b", "empty components"),
        ("read_file:/a/../etc", "plain names"),
        ("read_file:/a/./b", "plain names"),
        ("read_file:/a/{app}x", "plain names"),
        ("read_file:/a/b c", "plain names"),
        ("read_file:/" + "a" * 1100, "at most"),
    ],
)
def test_malformed_grants_are_refused_with_the_reason(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        g(text)


def test_a_scope_covers_its_subtree_and_nothing_beside_it():
    tmp = g("read_file:/tmp")
    assert tmp.covers(g("read_file:/tmp"))
    assert tmp.covers(g("read_file:/tmp/a/b"))
    assert not tmp.covers(g("read_file:/tmpx"))  # a prefix of the text is not of the path
    assert not tmp.covers(g("read_file"))  # scoped never covers anywhere
    assert not tmp.covers(g("write_file:/tmp/a"))  # another capability
    assert g("read_file").covers(tmp)
    assert tmp.allows(Capability.READ_FILE, P("/tmp/x"))
    assert not tmp.allows(Capability.READ_FILE, P("/storage/x"))
    assert not tmp.allows(Capability.WRITE_FILE, P("/tmp/x"))


def test_app_is_filled_in_or_the_grant_dropped():
    own = g("write_file:/storage/apps/{app}/data")
    assert own.for_app("notes") == g("write_file:/storage/apps/notes/data")
    assert own.for_app(None) is None
    assert g("write_file:/tmp").for_app(None) == g("write_file:/tmp")
    with pytest.raises(ValueError, match="plain names"):
        own.for_app("../etc")


def test_uncovered_lists_what_the_holder_lacks():
    held = [g("read_file:/storage/apps/notes"), g("system_info")]
    wanted = [g("read_file:/storage/apps/notes/a"), g("read_file:/storage"), g("kill_process")]
    assert uncovered(wanted, held) == [g("kill_process"), g("read_file:/storage")]
    assert covered(wanted[:1], held)
    assert not covered(wanted, held)


components = st.lists(st.sampled_from(["a", "b", "ab", "{app}"]), max_size=4)


@given(
    st.sampled_from(sorted(FILE_CAPABILITIES)),
    st.none() | components,
    st.none() | components,
    st.lists(st.sampled_from(["a", "b", "ab"]), max_size=5),
)
def test_covering_means_allowing_everything_the_covered_allows(capability, outer, inner, path):
    def grant(parts):
        return Grant(capability, None if parts is None else P("/", *parts))

    a, b = grant(outer), grant(inner)
    target = P("/", *path)
    if a.covers(b) and b.allows(capability, target):
        assert a.allows(capability, target)
    assert a.covers(a)
