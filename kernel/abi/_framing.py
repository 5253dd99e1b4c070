"""Sans-IO framing of the kernel socket: a 4-byte big-endian length, then a msgpack map."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

import msgpack

from sandbox.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "HEADER_BYTES",
    "MAX_CONTAINER_ITEMS",
    "FrameDecoder",
    "FrameTooLargeError",
    "MalformedFrameError",
    "decode_payload",
    "encode_frame",
]

_HEADER = struct.Struct(">I")
HEADER_BYTES = _HEADER.size
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_CONTAINER_ITEMS = 65_536
"""The most entries one map or array of a frame may hold: more is refused unread."""


class MalformedFrameError(InvalidArgumentError):
    """A frame's payload is not a msgpack map with string keys."""


class FrameTooLargeError(InvalidArgumentError):
    """A frame announces a payload larger than the connection's limit.

    The stream cannot be resynchronised cheaply after this, so the connection ends.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def encode_frame(message: Mapping[str, Any], *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """Pack one message into a frame.

    Raises:
        FrameTooLargeError: the packed message exceeds ``max_bytes``.
        TypeError: the message holds a value msgpack cannot encode.
    """
    payload: bytes = msgpack.packb(message, use_bin_type=True)
    if len(payload) > max_bytes:
        raise FrameTooLargeError(len(payload), max_bytes)
    return _HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Unpack a frame's payload into a map.

    Raises:
        MalformedFrameError: not msgpack, trailing bytes, not a map, non-string keys, or a
            map or array of more than MAX_CONTAINER_ITEMS entries.
    """
    try:
        message = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            max_map_len=MAX_CONTAINER_ITEMS,
            max_array_len=MAX_CONTAINER_ITEMS,
        )
    except ValueError as exc:  # every msgpack decode failure, invalid UTF-8 included
        reason = "nested too deeply" if isinstance(exc, msgpack.StackError) else str(exc)
        raise MalformedFrameError(f"frame is not valid msgpack: {reason}") from exc
    if not isinstance(message, dict):
        raise MalformedFrameError(f"frame must hold a map, not {type(message).__name__}")
    if not all(isinstance(key, str) for key in message):
        raise MalformedFrameError("frame keys must be strings")
    return message


class FrameDecoder:
    """Accumulates bytes and yields complete frame payloads, in order.

    >>> decoder = FrameDecoder()
    >>> decoder.feed(encode_frame({"id": 1}))
    >>> [decode_payload(p) for p in decoder]
    [{'id': 1}]
    """

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes."""
        self._buffer += data

    def __iter__(self) -> Iterator[bytes]:
        """Yield each complete payload now available.

        Raises:
            FrameTooLargeError: the next frame's header announces more than the limit.
        """
        while len(self._buffer) >= HEADER_BYTES:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > self._max:
                raise FrameTooLargeError(size, self._max)
            end = HEADER_BYTES + size
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER_BYTES:end])
            del self._buffer[:end]
            yield payload
