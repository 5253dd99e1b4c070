"""The event bus: kernel code publishes what happens, subscribers (``sys.events``) follow it.

Publishing never waits: each subscriber has a bounded buffer, and when it is full the
oldest event in it is dropped. The next event that subscriber receives carries in
``dropped`` how many were lost just before it, so a slow reader learns of the gap and
never slows the kernel or the other readers.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from kernel.abi.events import Event, EventKind, EventValue

__all__ = ["DEFAULT_BUFFER", "EventBus", "Subscription"]

DEFAULT_BUFFER = 1024
"""Events a subscriber may fall behind by before the oldest are dropped."""


class Subscription:
    """The events one subscriber has yet to receive; iterate it. Made by ``EventBus.subscribe``."""

    def __init__(self, kinds: frozenset[EventKind] | None, buffer: int) -> None:
        self.kinds = kinds
        self._buffer: collections.deque[Event] = collections.deque()
        self._size = buffer
        self._dropped = 0
        self._ready = trio.Event()
        self._closed = False

    def wants(self, kind: EventKind) -> bool:
        """Whether this subscriber follows events of ``kind``."""
        return self.kinds is None or kind in self.kinds

    def _put(self, event: Event) -> int:
        """Buffer ``event``; return how many older events it pushed out (0 or 1)."""
        dropped = 0
        if len(self._buffer) >= self._size:
            self._buffer.popleft()
            self._dropped += 1
            dropped = 1
        self._buffer.append(event)
        self._ready.set()
        return dropped

    def _close(self) -> None:
        self._closed = True
        self._buffer.clear()
        self._ready.set()

    def receive_nowait(self) -> Event:
        """The next buffered event, with the count of events lost before it.

        Raises:
            trio.WouldBlock: nothing is buffered.
            trio.ClosedResourceError: the subscription has ended.
        """
        if self._closed:
            raise trio.ClosedResourceError
        if not self._buffer:
            raise trio.WouldBlock
        event = self._buffer.popleft()
        if self._dropped:
            event = event.model_copy(update={"dropped": self._dropped})
            self._dropped = 0
        return event

    async def receive(self) -> Event:
        """The next event, waiting for one if need be.

        Raises:
            trio.ClosedResourceError: the subscription has ended.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                event = self.receive_nowait()
            except trio.WouldBlock:
                if self._ready.is_set():  # consumed: wait for the next publish
                    self._ready = trio.Event()
                await self._ready.wait()
            else:
                # Taken first, then a checkpoint that cannot cancel: no event is lost.
                await trio.lowlevel.cancel_shielded_checkpoint()
                return event

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.ClosedResourceError:
            raise StopAsyncIteration from None


class EventBus:
    """Fan-out of kernel events to any number of subscribers.

    Use it from the trio thread only: ``publish`` wakes subscriber tasks.

    Args:
        buffer: default size of each subscriber's buffer.
        clock: the source of events' ``time``.
        on_drop: told of each event a subscriber loses (for a metric).
    """

    def __init__(
        self,
        *,
        buffer: int = DEFAULT_BUFFER,
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        if buffer < 1:
            msg = f"a subscriber's buffer must hold at least one event, not {buffer}"
            raise ValueError(msg)
        self._buffer = buffer
        self._clock = clock
        self._on_drop = on_drop
        self._seq = itertools.count(1)
        self._subscriptions: set[Subscription] = set()
        self.dropped = 0
        """Events lost by all subscribers since the bus was made."""

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscriptions)

    def publish(self, kind: EventKind, *, pid: int | None = None, **data: EventValue) -> Event:
        """Number, stamp and deliver one event to every subscriber that wants its kind.

        Never blocks, and costs the same whether subscribers keep up or not.

        Args:
            kind: what happened.
            pid: the process it is about (0: the kernel), if any.
            **data: the kind's fields, msgpack-native scalars.

        Returns:
            The event, as published (``dropped`` 0).
        """
        event = Event(seq=next(self._seq), time=self._clock(), kind=kind, pid=pid, data=data)
        lost = 0
        for subscription in self._subscriptions:
            if subscription.wants(kind):
                lost += subscription._put(event)  # noqa: SLF001 - the bus owns its subscriptions
        if lost:
            self.dropped += lost
            if self._on_drop is not None:
                self._on_drop(lost)
        return event

    @asynccontextmanager
    async def subscribe(
        self, kinds: frozenset[EventKind] | None = None, *, buffer: int | None = None
    ) -> AsyncIterator[Subscription]:
        """Follow the events published from now on, of ``kinds`` (every kind if None).

        The subscription ends, and its buffer is freed, when the context exits.
        """
        size = self._buffer if buffer is None else buffer
        if size < 1:
            msg = f"a subscriber's buffer must hold at least one event, not {size}"
            raise ValueError(msg)
        subscription = Subscription(kinds, size)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            subscription._close()  # noqa: SLF001 - the bus owns its subscriptions
