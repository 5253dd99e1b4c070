"""A raw kernel-socket peer, to send what a well-behaved client never would."""

import os
import struct

import trio

from kernel.abi import FrameDecoder, decode_payload, encode_frame


def raw_frame(payload):
    """A frame around ``payload`` whatever it holds."""
    return struct.pack(">I", len(payload)) + payload


class RawPeer:
    """A connection that speaks bytes: frames out, decoded maps in."""

    def __init__(self, stream):
        self.stream = stream
        self.decoder = FrameDecoder()
        self.frames = []

    @classmethod
    async def connect(cls, path):
        return cls(await trio.open_unix_socket(os.fspath(path)))

    async def send(self, message):
        """One request (any map), framed."""
        await self.stream.send_all(encode_frame(message))

    async def send_raw(self, data, *, chunk=None):
        """Bytes as they are, in writes of ``chunk`` bytes if given."""
        step = chunk or len(data) or 1
        for start in range(0, len(data), step):
            await self.stream.send_all(data[start : start + step])

    async def receive(self, *, timeout=5):
        """The next frame."""
        (frame,) = await self.receive_many(1, timeout=timeout)
        return frame

    async def receive_many(self, count, *, timeout=5):
        """The next ``count`` frames."""
        with trio.fail_after(timeout):
            while len(self.frames) < count:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError(f"EOF after {len(self.frames)} of {count} frames")
                self._feed(data)
        taken, self.frames = self.frames[:count], self.frames[count:]
        return taken

    async def at_eof(self):
        """Read (keeping frames) until the kernel closes the connection."""
        with trio.fail_after(5):
            while data := await self.stream.receive_some(65536):
                self._feed(data)
        return True

    def _feed(self, data):
        self.decoder.feed(data)
        self.frames += [decode_payload(p) for p in self.decoder]
