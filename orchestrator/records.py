"""Records of one pydantic model kept one JSON file each, written atomically.

What the registry (packages) and the sessions share: a crash mid-write leaves the old
file or the new one, and listing reads the directory itself, skipping what does not
parse (logged), so a restart loses nothing written.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Generic, TypeVar

import trio
from pydantic import BaseModel, ValidationError

from sandbox.errors import NotFoundError
from sandbox.fsutil import atomic_write

__all__ = ["RECORD_ID_PATTERN", "RecordDirectory"]

logger = logging.getLogger("agentos.orchestrator.records")

RECORD_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,127}$"

M = TypeVar("M", bound=BaseModel)


class RecordDirectory(Generic[M]):
    """``<id><suffix>`` files of ``model`` in ``directory``; ``kind`` names them in errors."""

    def __init__(self, directory: Path, model: type[M], *, suffix: str, kind: str) -> None:
        self.directory = directory
        self.model = model
        self.suffix = suffix
        self.kind = kind

    def _missing(self, record_id: str) -> NotFoundError:
        return NotFoundError(f"no {self.kind} {record_id!r}")

    def path(self, record_id: str) -> Path:
        """The file of ``record_id``.

        Raises:
            NotFoundError: not an id (so there can be no such record).
        """
        if not re.fullmatch(RECORD_ID_PATTERN, record_id):
            raise self._missing(record_id)
        return self.directory / f"{record_id}{self.suffix}"

    def exists(self, record_id: str) -> bool:
        """Whether ``record_id`` is kept (blocking)."""
        return self.path(record_id).exists()

    def _read_all(self) -> list[M]:
        records: list[M] = []
        if not self.directory.is_dir():
            return records
        for path in sorted(self.directory.glob(f"*{self.suffix}")):
            try:
                records.append(self.model.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError) as exc:
                logger.warning("skipping unreadable %s %s: %s", self.kind, path, exc)
        return records

    async def read_all(self) -> list[M]:
        """Every record that parses, by id."""
        return await trio.to_thread.run_sync(self._read_all)

    async def read(self, record_id: str) -> M:
        """One record.

        Raises:
            NotFoundError: there is none.
        """
        try:
            data = await trio.Path(self.path(record_id)).read_bytes()
        except FileNotFoundError:
            raise self._missing(record_id) from None
        return self.model.model_validate_json(data)

    def write_blocking(self, record_id: str, record: M) -> None:
        """Keep ``record`` as ``record_id``, whole or not at all (blocking)."""
        path = self.path(record_id)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, record.model_dump_json().encode(), mode=0o600)

    async def write(self, record_id: str, record: M) -> None:
        """Keep ``record`` as ``record_id``, whole or not at all."""
        with trio.CancelScope(shield=True):  # half a write is no write: let it finish
            await trio.to_thread.run_sync(self.write_blocking, record_id, record)

    async def delete(self, record_id: str) -> None:
        """Remove a record.

        Raises:
            NotFoundError: there is none.
        """
        try:
            await trio.Path(self.path(record_id)).unlink()
        except FileNotFoundError:
            raise self._missing(record_id) from None
