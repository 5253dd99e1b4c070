import pytest

from tests.kernel.server._peers import RawPeer


@pytest.fixture
async def connect(kernel):
    """Open raw peers to the module's ``kernel``; all are closed at the end of the test."""
    opened = []

    async def open_peer():
        peer = await RawPeer.connect(kernel.socket)
        opened.append(peer)
        return peer

    yield open_peer
    for peer in opened:
        await peer.stream.aclose()
