import contextlib
import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi import (
    MAX_CONTAINER_ITEMS,
    FrameDecoder,
    FrameTooLargeError,
    MalformedFrameError,
    decode_payload,
    encode_frame,
)

# msgpack-native values, as requests and replies carry them.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=50)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
messages = st.dictionaries(st.text(max_size=20), values, max_size=8)
flat_messages = st.dictionaries(st.text(max_size=10), scalars, max_size=4)  # cheaper to draw


@given(st.lists(messages, min_size=1, max_size=6), st.data())
def test_any_split_of_the_stream_yields_the_same_frames(batch, data):
    stream = b"".join(encode_frame(m) for m in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    decoded = []
    consumed = 0
    start = 0
    for cut in [*cuts, len(stream)]:
        decoder.feed(stream[start:cut])
        payloads = list(decoder)
        decoded += [decode_payload(p) for p in payloads]
        consumed += sum(4 + len(p) for p in payloads)
        assert decoder.buffered == cut - consumed  # only a partial frame is left over
        start = cut
    assert decoded == batch
    assert decoder.buffered == 0


@given(st.binary(max_size=200))
def test_arbitrary_payloads_decode_or_raise_malformed(payload):
    # Never anything but a map or MalformedFrameError, whatever the bytes.
    try:
        message = decode_payload(payload)
    except MalformedFrameError:
        return
    assert isinstance(message, dict)
    assert all(isinstance(k, str) for k in message)


def test_partial_header_and_payload_wait_for_more_bytes():
    frame = encode_frame({"id": 1, "call": "sys.ping"})
    decoder = FrameDecoder()
    decoder.feed(frame[:3])
    assert list(decoder) == []
    decoder.feed(frame[3:-1])
    assert list(decoder) == []
    decoder.feed(frame[-1:])
    assert [decode_payload(p) for p in decoder] == [{"id": 1, "call": "sys.ping"}]


def test_header_is_four_byte_big_endian_length():
    frame = encode_frame({"a": 1})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert msgpack.unpackb(frame[4:]) == {"a": 1}


def test_oversize_header_is_refused_before_the_payload_arrives():
    decoder = FrameDecoder(max_frame_bytes=1024)
    decoder.feed(struct.pack(">I", 1025))
    with pytest.raises(FrameTooLargeError) as info:
        list(decoder)
    assert (info.value.size, info.value.limit) == (1025, 1024)


def test_encoding_refuses_a_message_over_the_limit():
    with pytest.raises(FrameTooLargeError):
        encode_frame({"blob": b"x" * 2000}, max_bytes=1024)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1, 2]), "must hold a map, not list"),
        (msgpack.packb({1: 2}), "not valid msgpack"),
        (msgpack.packb({"a": 1}) + b"\x00", "not valid msgpack"),
        (b"\xa3ab\xff", "not valid msgpack"),  # invalid UTF-8 in a str
        (b"", "not valid msgpack"),
        (msgpack.packb({f"k{i}": 0 for i in range(MAX_CONTAINER_ITEMS + 1)}), "max_map_len"),
        (msgpack.packb({"a": [0] * (MAX_CONTAINER_ITEMS + 1)}), "max_array_len"),
        (msgpack.packb({"a": {f"k{i}": 0 for i in range(MAX_CONTAINER_ITEMS + 1)}}), "max_map_len"),
        (msgpack.packb({b"id": 1}, use_bin_type=True), "keys must be strings"),
        (b"\x81\xa1a" * 100_000 + b"\xc0", "nested too deeply"),  # nested past msgpack's stack
        (b"\x91" * 100_000 + b"\xc0", "nested too deeply"),
    ],
)
def test_malformed_payloads_name_the_problem(payload, reason):
    with pytest.raises(MalformedFrameError, match=reason):
        decode_payload(payload)


@given(messages)
def test_round_trip_yields_a_frame_exactly_when_its_last_byte_arrives(message):
    frame = encode_frame(message)
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    decoder = FrameDecoder()
    decoder.feed(frame[:-1])
    assert list(decoder) == []
    assert decoder.buffered == len(frame) - 1
    decoder.feed(frame[-1:])
    assert [decode_payload(p) for p in decoder] == [message]
    assert decoder.buffered == 0


# A byte stream that is partly frames: valid ones, ones of arbitrary payload, ones whose
# header announces any length, and loose bytes.
stream_parts = st.lists(
    flat_messages.map(encode_frame)
    | st.binary(max_size=40).map(lambda p: struct.pack(">I", len(p)) + p)
    | st.integers(0, 2**32 - 1).map(lambda n: struct.pack(">I", n))
    | st.binary(max_size=20),
    max_size=8,
)


@given(stream_parts, st.integers(0, 512), st.data())
def test_arbitrary_bytes_raise_nothing_but_the_documented_errors(parts, limit, data):
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = FrameDecoder(max_frame_bytes=limit)
    start = 0
    refused = None
    try:
        for cut in [*cuts, len(stream)]:
            decoder.feed(stream[start:cut])
            start = cut
            for payload in decoder:
                assert len(payload) <= limit
                with contextlib.suppress(MalformedFrameError):
                    decode_payload(payload)
    except FrameTooLargeError as exc:
        refused = exc
    if refused is not None:
        assert refused.size > refused.limit == limit


@given(
    st.lists(flat_messages, max_size=4),
    st.integers(0, 1 << 20),
    st.integers(1, 1 << 32),
    st.binary(max_size=64),
)
def test_a_declared_length_over_the_limit_is_refused_before_its_body(
    before, headroom, excess, body_start
):
    frames = [encode_frame(m) for m in before]
    limit = max((len(f) - 4 for f in frames), default=0) + headroom
    size = min(limit + excess, 2**32 - 1)
    decoder = FrameDecoder(max_frame_bytes=limit)
    decoder.feed(b"".join(frames) + struct.pack(">I", size) + body_start[: size - 1])
    decoded = []
    with pytest.raises(FrameTooLargeError) as info:
        decoded.extend(decode_payload(p) for p in decoder)
    assert decoded == before  # the frames before it still come out, in order
    assert (info.value.size, info.value.limit) == (size, limit)
    with pytest.raises(FrameTooLargeError):  # and the decoder does not skip past it
        list(decoder)


@pytest.mark.parametrize(
    "message",
    [
        {f"k{i}": 0 for i in range(MAX_CONTAINER_ITEMS)},
        {"a": [0] * MAX_CONTAINER_ITEMS},
        {"a": {f"k{i}": None for i in range(MAX_CONTAINER_ITEMS)}},
    ],
    ids=["top map", "array", "nested map"],
)
def test_containers_of_exactly_the_item_limit_are_accepted(message):
    decoder = FrameDecoder()
    decoder.feed(encode_frame(message))
    assert [decode_payload(p) for p in decoder] == [message]
