"""A process's output log: numbered chunks, bounded, followed until it ends."""

import trio
import trio.testing

from kernel.abi.process import OutputStream
from kernel.proc import OutputLog

OUT, ERR = OutputStream.STDOUT, OutputStream.STDERR


def texts(chunks):
    return [(c.seq, c.stream, c.data) for c in chunks]


def test_chunks_are_numbered_across_streams_and_read_after_a_number():
    log = OutputLog(capacity=100)
    log.append(OUT, b"one")
    log.append(ERR, b"two")
    log.append(OUT, b"")  # nothing: no number
    log.append(OUT, b"three")
    assert texts(log.after(0)) == [(1, OUT, b"one"), (2, ERR, b"two"), (3, OUT, b"three")]
    assert texts(log.after(2)) == [(3, OUT, b"three")]
    assert log.after(3) == []
    assert log.last_seq == 3


def test_the_oldest_output_is_evicted_past_the_capacity_and_counted():
    log = OutputLog(capacity=10)
    log.append(OUT, b"aaaa")
    log.append(OUT, b"bbbb")
    log.append(OUT, b"cccc")
    assert texts(log.after(0)) == [(2, OUT, b"bbbb"), (3, OUT, b"cccc")]
    assert log.evicted_bytes == 4
    log.append(ERR, b"x" * 25)  # a chunk larger than it all keeps its tail alone
    assert texts(log.after(0)) == [(4, ERR, b"x" * 10)]
    assert log.evicted_bytes == 4 + 8 + 15


async def test_followers_wake_on_output_and_on_the_end():
    log = OutputLog()
    woke = []

    async def follow():
        await log.wait_after(0)
        woke.append(texts(log.after(0)))
        await log.wait_after(1)
        woke.append(log.ended)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        log.append(OUT, b"hi")
        await trio.testing.wait_all_tasks_blocked()
        log.close(OUT)
        await trio.testing.wait_all_tasks_blocked()
        assert len(woke) == 1  # one stream still open
        log.close(ERR)
    assert woke == [[(1, OUT, b"hi")], True]
