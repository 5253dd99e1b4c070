"""The kernel's socket table: per-process and kernel-wide limits, release at exit."""

import errno
import socket

import pytest
import trio

from kernel.abi import ErrorCode, SyscallError
from kernel.net import SocketTable, net_error


@pytest.fixture
async def table():
    table = SocketTable(per_process=3, total=5)
    yield table
    table.close_all()


def code(call, *args):
    with pytest.raises(SyscallError) as failure:
        call(*args)
    return failure.value.code


async def test_a_process_holds_at_most_its_share_and_the_kernel_its_total(table):
    for _ in range(3):
        table.open(7, socket.AF_INET, socket.SOCK_STREAM)
    assert code(table.open, 7, socket.AF_INET, socket.SOCK_STREAM) == ErrorCode.EMFILE
    table.open(8, socket.AF_INET, socket.SOCK_DGRAM)
    table.open(8, socket.AF_INET6, socket.SOCK_STREAM)
    assert code(table.open, 9, socket.AF_INET, socket.SOCK_STREAM) == ErrorCode.ENFILE
    assert len(table) == 5
    assert table.holders() == {7, 8}


async def test_release_closes_exactly_the_exiting_processs_sockets(table):
    mine = [table.open(7, socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
    theirs = table.open(8, socket.AF_INET, socket.SOCK_STREAM)
    table.release(7)
    assert len(table) == 1
    assert table.owned_by(7) == []
    assert table.owned_by(8) == [theirs]
    assert all(held.sock.fileno() == -1 for held in mine)
    assert table.get(mine[0].id) is None
    table.open(7, socket.AF_INET, socket.SOCK_STREAM)  # room again
    table.release(12345)  # holds nothing: nothing happens


async def test_an_accepted_connection_without_room_is_shut_at_once(table):
    for _ in range(3):
        table.open(7, socket.AF_INET, socket.SOCK_STREAM)
    left, right = trio.socket.socketpair()
    assert code(table.adopt, 7, left) == ErrorCode.EMFILE
    assert left.fileno() == -1
    assert await right.recv(10) == b""  # the peer sees the end
    right.close()


async def test_ids_are_not_reused(table):
    first = table.open(7, socket.AF_INET, socket.SOCK_STREAM)
    table.close(first.id)
    table.close(first.id)  # twice: nothing happens
    assert table.open(7, socket.AF_INET, socket.SOCK_STREAM).id != first.id


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (errno.ECONNREFUSED, ErrorCode.ECONNREFUSED),
        (errno.EADDRINUSE, ErrorCode.EADDRINUSE),
        (errno.EDESTADDRREQ, ErrorCode.ENOTCONN),
        (errno.EADDRNOTAVAIL, ErrorCode.EINVAL),
        (errno.ENOBUFS, ErrorCode.ENOMEM),
        (errno.ELOOP, ErrorCode.EIO),
    ],
)
def test_os_errors_become_the_nearest_code_and_keep_their_name(number, expected):
    error = net_error(OSError(number, "x"), "connect 192.0.2.1:80")
    assert error.code == expected
    assert error.message.startswith("connect 192.0.2.1:80: ")
    if expected.value != errno.errorcode[number]:
        assert errno.errorcode[number] in error.message


def test_a_name_that_does_not_resolve_is_enoent():
    error = net_error(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "bind x")
    assert (error.code, error.message) == (ErrorCode.ENOENT, "bind x: Name or service not known")
