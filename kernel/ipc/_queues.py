"""Message queues between kernel processes: FIFO, priority, and publish/subscribe.

A FIFO or priority queue holds at most ``capacity`` messages; a sender waits while it is
full (or gets EAGAIN), a receiver while it is empty. Priority queues hand out the highest
priority first, in sending order among equals. A pubsub queue copies each message into
every subscriber's own buffer of ``capacity`` messages; a subscriber that does not keep
up loses the messages that do not fit (counted), and the publisher never waits. All
queues together hold at most ``budget`` bytes of messages.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field

import trio

from kernel.abi import (
    ErrorCode,
    SyscallExhaustedError,
    SyscallInvalidArgumentError,
    SyscallNotFoundError,
    SyscallPreconditionError,
    SyscallTimeoutError,
    SyscallUnavailableError,
)
from kernel.abi.ipc import QueueType
from kernel.ipc._waiting import Waitable

__all__ = [
    "QUEUES_PER_PROCESS",
    "QUEUE_BUDGET",
    "Message",
    "Queue",
    "QueueTable",
]

QUEUE_BUDGET = 100 << 20
"""Bytes of messages all queues together may hold."""
QUEUES_PER_PROCESS = 64


@dataclass(frozen=True)
class Message:
    """One message as a receiver gets it."""

    seq: int
    data: bytes
    priority: int
    sender: int
    sent_at: float


@dataclass(eq=False)
class _Inbox:
    """Messages waiting for one receiver (a subscriber), or for any (FIFO, priority)."""

    priority: bool
    items: list[tuple[int, int, Message]] = field(default_factory=list)  # heap (priority)
    fifo: deque[Message] = field(default_factory=deque)
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.items) if self.priority else len(self.fifo)

    def put(self, message: Message) -> None:
        if self.priority:
            heapq.heappush(self.items, (-message.priority, message.seq, message))
        else:
            self.fifo.append(message)

    def take(self) -> Message:
        return heapq.heappop(self.items)[2] if self.priority else self.fifo.popleft()

    def clear(self) -> list[Message]:
        taken = [entry[2] for entry in self.items] + list(self.fifo)
        self.items.clear()
        self.fifo.clear()
        return taken


@dataclass(eq=False)
class Queue(Waitable):
    """One queue and what waits in it."""

    id: int
    creator: int
    kind: QueueType
    capacity: int
    max_message: int
    public: bool
    app_id: str | None
    inbox: _Inbox = field(init=False)
    subscribers: dict[int, _Inbox] = field(default_factory=dict)
    closed: bool = False
    destroyed: bool = False
    sent: int = 0
    received: int = 0

    def __post_init__(self) -> None:
        self.inbox = _Inbox(priority=self.kind is QueueType.PRIORITY)

    def check_usable(self) -> None:
        if self.destroyed:
            msg = f"queue {self.id} was destroyed"
            raise SyscallPreconditionError(msg, code=ErrorCode.EPIPE)


class QueueTable:
    """Every queue, and the bytes of messages they hold together."""

    def __init__(
        self, *, budget: int = QUEUE_BUDGET, per_process: int = QUEUES_PER_PROCESS
    ) -> None:
        self.budget = budget
        self.per_process = per_process
        self.held = 0
        self._queues: dict[int, Queue] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)

    def queues(self) -> list[Queue]:
        """Every queue, oldest first."""
        return list(self._queues.values())

    def create(
        self,
        *,
        creator: int,
        kind: QueueType,
        capacity: int,
        max_message: int,
        public: bool,
        app_id: str | None,
    ) -> Queue:
        """A new queue.

        Raises:
            SyscallExhaustedError: EMFILE, the creator has made as many as it may.
        """
        if sum(1 for q in self._queues.values() if q.creator == creator) >= self.per_process:
            msg = f"a process may make at most {self.per_process} queues"
            raise SyscallExhaustedError(msg, code=ErrorCode.EMFILE)
        queue = Queue(next(self._ids), creator, kind, capacity, max_message, public, app_id)
        self._queues[queue.id] = queue
        return queue

    def get(self, queue_id: int) -> Queue:
        """The queue ``queue_id``.

        Raises:
            SyscallNotFoundError: ENOENT, no such queue.
        """
        try:
            return self._queues[queue_id]
        except KeyError:
            msg = f"no such queue {queue_id}"
            raise SyscallNotFoundError(msg) from None

    async def send(
        self,
        queue: Queue,
        message: bytes,
        *,
        sender: int,
        priority: int,
        wait: bool,
        within: float | None,
    ) -> tuple[int, int]:
        """Put a message in (for pubsub: in every subscriber's buffer).

        Returns:
            (its sequence number, how many receivers got it: 1, or the subscribers).

        Raises:
            SyscallInvalidArgumentError: EMSGSIZE, over the queue's message size.
            SyscallPreconditionError: EPIPE, the queue is closed or destroyed.
            SyscallExhaustedError: ENOMEM, the queues' budget is spent.
            SyscallUnavailableError: EAGAIN, full and ``wait`` is False.
            SyscallTimeoutError: ETIMEDOUT, still full after ``within`` seconds.
        """
        if len(message) > queue.max_message:
            msg = f"queue {queue.id} takes messages of at most {queue.max_message} bytes"
            raise SyscallInvalidArgumentError(msg, code=ErrorCode.EMSGSIZE)
        with trio.move_on_after(math.inf if within is None else within):
            while True:
                queue.check_usable()
                if queue.closed:
                    msg = f"queue {queue.id} is closed"
                    raise SyscallPreconditionError(msg, code=ErrorCode.EPIPE)
                if queue.kind is QueueType.PUBSUB:
                    return self._publish(queue, message, sender, priority)
                if len(queue.inbox) < queue.capacity:
                    self._reserve(len(message))
                    entry = Message(next(self._seq), message, priority, sender, time.time())
                    queue.inbox.put(entry)
                    queue.sent += 1
                    queue.wake()
                    return entry.seq, 1
                if not wait:
                    msg = f"queue {queue.id} is full"
                    raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN)
                await queue.changed()
        msg = f"queue {queue.id} stayed full for {within} s"
        raise SyscallTimeoutError(msg)

    def _publish(self, queue: Queue, data: bytes, sender: int, priority: int) -> tuple[int, int]:
        entry = Message(next(self._seq), data, priority, sender, time.time())
        room = [inbox for inbox in queue.subscribers.values() if len(inbox) < queue.capacity]
        self._reserve(len(data) * len(room))  # all of them, or none
        for inbox in queue.subscribers.values():
            if len(inbox) >= queue.capacity:
                inbox.dropped += 1  # a slow subscriber loses what does not fit
            else:
                inbox.put(entry)
        delivered = len(room)
        queue.sent += 1
        queue.wake()
        return entry.seq, delivered

    def _reserve(self, size: int) -> None:
        if self.held + size > self.budget:
            msg = f"the queues' budget is spent: {self.held} of {self.budget} bytes held"
            raise SyscallExhaustedError(msg, code=ErrorCode.ENOMEM)
        self.held += size

    async def receive(
        self, queue: Queue, *, receiver: int, wait: bool, within: float | None
    ) -> Message:
        """Take the next message (for pubsub: from the receiver's own subscription).

        Raises:
            SyscallInvalidArgumentError: EINVAL, a pubsub queue the receiver is not
                subscribed to.
            SyscallPreconditionError: EPIPE, closed and empty, or destroyed.
            SyscallUnavailableError: EAGAIN, empty and ``wait`` is False.
            SyscallTimeoutError: ETIMEDOUT, still empty after ``within`` seconds.
        """
        with trio.move_on_after(math.inf if within is None else within):
            while True:
                queue.check_usable()
                inbox = self._inbox_of(queue, receiver)
                if len(inbox):
                    message = inbox.take()
                    self.held -= len(message.data)
                    queue.received += 1
                    queue.wake()
                    return message
                if queue.closed:
                    msg = f"queue {queue.id} is closed and empty"
                    raise SyscallPreconditionError(msg, code=ErrorCode.EPIPE)
                if not wait:
                    msg = f"queue {queue.id} is empty"
                    raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN)
                await queue.changed()
        msg = f"nothing came in queue {queue.id} in {within} s"
        raise SyscallTimeoutError(msg)

    @staticmethod
    def _inbox_of(queue: Queue, receiver: int) -> _Inbox:
        if queue.kind is not QueueType.PUBSUB:
            return queue.inbox
        inbox = queue.subscribers.get(receiver)
        if inbox is None:
            msg = f"process {receiver} is not subscribed to queue {queue.id}"
            raise SyscallInvalidArgumentError(msg)
        return inbox

    def subscribe(self, queue: Queue, pid: int) -> None:
        """Give ``pid`` its own buffer of what is published from now on.

        Raises:
            SyscallInvalidArgumentError: EINVAL, not a pubsub queue.
        """
        if queue.kind is not QueueType.PUBSUB:
            msg = f"queue {queue.id} is {queue.kind}: only pubsub queues have subscribers"
            raise SyscallInvalidArgumentError(msg)
        queue.check_usable()
        queue.subscribers.setdefault(pid, _Inbox(priority=False))

    def unsubscribe(self, queue: Queue, pid: int) -> bool:
        """Drop ``pid``'s subscription and what waits in it; whether it had one."""
        inbox = queue.subscribers.pop(pid, None)
        if inbox is None:
            return False
        self.held -= sum(len(m.data) for m in inbox.clear())
        queue.wake()
        return True

    def close(self, queue: Queue) -> None:
        """No more sends; receivers take what is left, then get EPIPE."""
        queue.closed = True
        queue.wake()

    def destroy(self, queue: Queue) -> None:
        """Remove the queue and everything in it; its waiters fail with EPIPE."""
        if queue.destroyed:
            return
        queue.destroyed = True
        self.held -= sum(len(m.data) for m in queue.inbox.clear())
        for pid in list(queue.subscribers):
            self.unsubscribe(queue, pid)
        del self._queues[queue.id]
        queue.wake()

    def holders(self) -> set[int]:
        """Every pid that made a queue or is subscribed to one."""
        return {q.creator for q in self._queues.values()} | {
            pid for q in self._queues.values() for pid in q.subscribers
        }

    def release(self, pid: int) -> None:
        """A process exited: its queues go, and its subscriptions."""
        for queue in list(self._queues.values()):
            if queue.creator == pid:
                self.destroy(queue)
            else:
                self.unsubscribe(queue, pid)
