"""The policies processes are spawned under: the built-ins and the administrators' own.

The administrators' policies are kept in one JSON file in the kernel's state directory,
replaced atomically (a temporary file, fsync, rename, fsync of the directory), so a
crash at any moment leaves either the old set or the new one. A change applies to
processes spawned after it; those already running keep the policy they started with.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pydantic
import trio

from kernel.abi import (
    ErrorCode,
    SyscallExhaustedError,
    SyscallExistsError,
    SyscallInvalidArgumentError,
    SyscallNotFoundError,
    SyscallPermissionError,
    SyscallPreconditionError,
)
from sandbox.errors import describe_invalid
from sandbox.fsutil import atomic_write
from sandbox.policy import BUILTIN_POLICIES, Policy

__all__ = ["MAX_POLICIES", "PolicyStore"]

logger = logging.getLogger("agentos.kernel.policies")

_FORMAT = 1
MAX_POLICIES = 256


class PolicyStore:
    """The built-in policies, and the administrators' own (in memory until :meth:`attach`).

    Args:
        in_use: how many live processes run under a policy name (deleting waits for 0).
    """

    def __init__(self, *, in_use: Callable[[str], int] = lambda _name: 0) -> None:
        self.path: Path | None = None
        self._in_use = in_use
        self._custom: dict[str, Policy] = {}
        self._lock = trio.Lock()

    def attach(self, path: Path) -> int:
        """Keep the administrators' policies in ``path``; how many it held.

        Those in the file replace the ones in memory.
        """
        self._custom = self._load(path)
        self.path = path
        return len(self._custom)

    @staticmethod
    def _load(path: Path) -> dict[str, Policy]:
        """The policies in ``path``; a file that cannot be read is set aside, not lost."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return {}
        try:
            document = json.loads(text)
            if document.get("format") != _FORMAT:
                msg = f"unknown format {document.get('format')!r}"
                raise ValueError(msg)  # noqa: TRY301 - one handler for every way it is bad
            policies = [Policy.model_validate(item) for item in document["policies"]]
        except (ValueError, KeyError, TypeError, AttributeError, pydantic.ValidationError) as exc:
            aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            path.rename(aside)
            logger.error("policies in %s unreadable (%s): moved to %s", path, exc, aside)  # noqa: TRY400
            return {}
        return {policy.name: policy for policy in policies if policy.name not in BUILTIN_POLICIES}

    def get(self, name: str) -> Policy:
        """The policy ``name``.

        Raises:
            SyscallNotFoundError: ENOENT, no such policy.
        """
        policy = BUILTIN_POLICIES.get(name) or self._custom.get(name)
        if policy is None:
            known = ", ".join(sorted({*BUILTIN_POLICIES, *self._custom}))
            msg = f"no policy {name!r} (there are: {known})"
            raise SyscallNotFoundError(msg, code=ErrorCode.ENOENT)
        return policy

    def all(self) -> list[tuple[Policy, bool]]:
        """Every policy and whether it is built in: the built-ins first, then by name."""
        return [(policy, True) for policy in BUILTIN_POLICIES.values()] + [
            (self._custom[name], False) for name in sorted(self._custom)
        ]

    def in_use(self, name: str) -> int:
        """How many live processes run under ``name``."""
        return self._in_use(name)

    @staticmethod
    def parse(document: object) -> Policy:
        """A policy from its JSON form.

        Raises:
            SyscallInvalidArgumentError: EINVAL naming each bad field.
        """
        try:
            return Policy.model_validate(document)
        except pydantic.ValidationError as exc:
            summary, details = describe_invalid(exc, whole="policy")
            msg = f"invalid policy: {summary}"
            raise SyscallInvalidArgumentError(msg, details=details) from None

    async def put(self, policy: Policy, *, create_only: bool = False) -> bool:
        """Add or replace an administrators' policy; whether it is new.

        Raises:
            SyscallPermissionError: a built-in's name (they cannot change).
            SyscallExistsError: ``create_only`` and the name is taken.
            SyscallExhaustedError: ENOSPC, already MAX_POLICIES of them.
        """
        if policy.name in BUILTIN_POLICIES:
            msg = f"{policy.name!r} is a built-in policy: it cannot be changed"
            raise SyscallPermissionError(msg)
        async with self._lock:
            created = policy.name not in self._custom
            if not created and create_only:
                msg = f"policy {policy.name!r} exists"
                raise SyscallExistsError(msg)
            if created and len(self._custom) >= MAX_POLICIES:
                msg = f"already {MAX_POLICIES} policies"
                raise SyscallExhaustedError(msg, code=ErrorCode.ENOSPC)
            await self._save({**self._custom, policy.name: policy})
        logger.info("policy %s %s", policy.name, "created" if created else "updated")
        return created

    async def delete(self, name: str) -> None:
        """Remove an administrators' policy that no live process runs under.

        Raises:
            SyscallPermissionError: a built-in.
            SyscallNotFoundError: ENOENT, no such policy.
            SyscallPreconditionError: EBUSY, processes run under it.
        """
        if name in BUILTIN_POLICIES:
            msg = f"{name!r} is a built-in policy: it cannot be deleted"
            raise SyscallPermissionError(msg)
        async with self._lock:
            self.get(name)
            if users := self._in_use(name):
                msg = f"policy {name!r} is in use by {users} process(es)"
                raise SyscallPreconditionError(msg)
            await self._save({k: v for k, v in self._custom.items() if k != name})
        logger.info("policy %s deleted", name)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, data, mode=0o600)

    async def _save(self, policies: dict[str, Policy]) -> None:
        """Write ``policies`` to the file (if any), then make them the store's."""
        if self.path is not None:
            document = {
                "format": _FORMAT,
                "policies": [policies[n].model_dump(mode="json") for n in sorted(policies)],
            }
            text = json.dumps(document, indent=1) + "\n"
            with trio.CancelScope(shield=True):  # half a save is no save: let it finish
                await trio.to_thread.run_sync(self._write, self.path, text.encode())
        self._custom = policies
