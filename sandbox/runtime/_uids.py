"""A unique non-root uid (and gid) per sandbox, reserved on disk across processes."""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

from sandbox.errors import InvalidArgumentError, ResourceExhaustedError

__all__ = ["UID_BASE", "UID_COUNT", "UidAllocator"]

UID_BASE = 1_000_000
UID_COUNT = 65_536


class UidAllocator:
    """Reserves uids from ``[base, base + count)``, one file per uid in ``directory``.

    A reservation is a file created with O_EXCL, so two processes sharing the directory
    (the kernel and a one-shot ``agentos sandbox run``) never hand out the same uid.
    The file holds the owner's name, so orphans can be found and released.
    """

    def __init__(self, directory: Path, *, base: int = UID_BASE, count: int = UID_COUNT) -> None:
        if base < 1000 or count < 1 or base + count > 2**32 - 2:
            msg = f"uid range [{base}, {base + count}) is not a range of ordinary uids"
            raise InvalidArgumentError(msg)
        self.directory = directory
        self.base = base
        self.count = count

    def reserve(self, owner: str) -> int:
        """Reserve a free uid for ``owner``.

        Raises:
            ResourceExhaustedError: every uid in the range is taken.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        start = random.randrange(self.count)  # noqa: S311 - spreading, not secrecy
        for offset in range(self.count):
            uid = self.base + (start + offset) % self.count
            try:
                fd = os.open(self.directory / str(uid), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as file:
                file.write(owner)
            return uid
        msg = f"all {self.count} sandbox uids are in use"
        raise ResourceExhaustedError(msg)

    def release(self, uid: int) -> None:
        """Free a reservation (absent is fine)."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / str(uid)).unlink()

    def reserved(self) -> dict[int, str]:
        """Every reservation: uid -> owner."""
        if not self.directory.is_dir():
            return {}
        owners = {}
        for entry in self.directory.iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(FileNotFoundError):
                    owners[int(entry.name)] = entry.read_text()
        return owners
