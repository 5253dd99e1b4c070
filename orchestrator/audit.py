"""The audit log of admin actions: one JSON line each, appended and fsynced before answering.

Kept in the orchestrator's state directory (``audit.jsonl``, mode 0600). When it passes
its size limit it is renamed to ``audit.jsonl.1`` (the one before that is dropped), so
the log keeps between one and two limits' worth of the latest actions.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, Field

__all__ = ["AuditEntry", "AuditLog"]

DEFAULT_MAX_BYTES = 8 << 20


class AuditEntry(BaseModel):
    """One admin action."""

    at: float = Field(description="Unix seconds")
    action: str = Field(description="what was asked, e.g. policy.update")
    target: str = Field(description="what it was asked of, e.g. a policy's name")
    outcome: str = Field(description="ok, or the error code it failed with")
    client: str = Field(description="the address the request came from")
    details: dict[str, Any] = Field(default_factory=dict)


class AuditLog:
    """Appends entries to ``path``; reads the latest back."""

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = trio.Lock()

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if self.path.stat().st_size + len(line) > self.max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def record(
        self,
        action: str,
        target: str,
        outcome: str,
        *,
        client: str,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry, on disk before this returns."""
        entry = AuditEntry(
            at=time.time(), action=action, target=target, outcome=outcome, client=client,
            details=details or {},
        )  # fmt: skip
        line = (entry.model_dump_json() + "\n").encode()
        async with self._lock:
            with trio.CancelScope(shield=True):  # an action done is an action logged
                await trio.to_thread.run_sync(self._append, line)
        return entry

    def _tail(self, limit: int) -> list[AuditEntry]:
        latest: deque[AuditEntry] = deque(maxlen=limit)
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            try:
                with path.open("rb") as file:
                    for raw in file:
                        try:
                            latest.append(AuditEntry.model_validate(json.loads(raw)))
                        except ValueError:
                            continue  # a line torn by a crash mid-append
            except FileNotFoundError:
                continue
        return list(latest)

    async def latest(self, limit: int = 100) -> list[AuditEntry]:
        """The last ``limit`` entries, oldest first."""
        async with self._lock:
            return await trio.to_thread.run_sync(self._tail, limit)
