import pytest

from kernel.abi import (
    MalformedRequestError,
    SyscallInvalidArgumentError,
    error_reply,
    parse_reply,
    parse_request,
)
from kernel.abi._errors import ErrorCode
from sandbox.errors import MAX_DETAILS


def test_valid_request_defaults_args():
    request = parse_request({"id": 7, "call": "sys.ping"})
    assert (request.id, request.call, request.args) == (7, "sys.ping", {})


@pytest.mark.parametrize(
    ("frame", "loc", "request_id"),
    [
        ({"call": "sys.ping"}, "id", None),
        ({"id": -1, "call": "sys.ping"}, "id", None),
        ({"id": True, "call": "sys.ping"}, "id", None),
        ({"id": "1", "call": "sys.ping"}, "id", None),
        ({"id": 3}, "call", 3),
        ({"id": 3, "call": "Sys.Ping"}, "call", 3),
        ({"id": 3, "call": "ping"}, "call", 3),
        ({"id": 3, "call": "sys.ping", "args": [1]}, "args", 3),
        ({"id": 3, "call": "sys.ping", "arg": {}}, "arg", 3),
    ],
)
def test_malformed_requests_name_the_field_and_keep_the_id(frame, loc, request_id):
    with pytest.raises(MalformedRequestError) as info:
        parse_request(frame)
    assert info.value.code == ErrorCode.EINVAL
    assert info.value.request_id == request_id
    assert [d["loc"] for d in info.value.details] == [loc]


def test_a_request_with_many_bad_fields_names_the_first_few_and_counts_the_rest():
    frame = {"id": 3, "call": "sys.ping", **{f"k{i}": 0 for i in range(1000)}}
    with pytest.raises(MalformedRequestError) as info:
        parse_request(frame)
    assert [d["loc"] for d in info.value.details] == [f"k{i}" for i in range(MAX_DETAILS)]
    assert info.value.message.endswith(f"(and {1000 - MAX_DETAILS} more)")
    assert len(info.value.message) < 2000


def test_reply_parsing_distinguishes_items_results_and_errors():
    assert parse_reply({"id": 1, "item": {"n": 1}}).is_item
    assert parse_reply({"id": 1, "ok": True, "result": 5}).result == 5
    error = parse_reply(error_reply(2, ErrorCode.EPERM, "no", [{"loc": "args.x", "msg": "m"}]))
    assert (error.ok, error.error.code, error.error.details[0]["loc"]) == (False, "EPERM", "args.x")
    assert parse_reply(error_reply(None, ErrorCode.EINVAL, "bad frame")).id is None


@pytest.mark.parametrize(
    "frame",
    [
        {"id": 1},
        {"id": 1, "ok": False},
        {"id": "x", "item": 1},
        {"ok": True},
        {"id": None, "ok": True, "result": 1},
    ],
)
def test_replies_outside_the_protocol_are_rejected(frame):
    with pytest.raises(SyscallInvalidArgumentError):
        parse_reply(frame)
