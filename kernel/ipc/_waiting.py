"""What pipes and queues share: tasks waiting for them to change."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

__all__ = ["Waitable"]


@dataclass(eq=False)
class Waitable:
    """Something tasks wait on until it changes (data came, room freed, it was closed)."""

    _changed: trio.Event = field(default_factory=trio.Event, kw_only=True, repr=False)

    def wake(self) -> None:
        """Let every waiter look again."""
        self._changed.set()
        self._changed = trio.Event()

    async def changed(self) -> None:
        """Return at the next change."""
        await self._changed.wait()
