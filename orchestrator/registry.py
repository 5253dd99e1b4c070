"""The app registry: saved apps (packages) kept one JSON file each, listed from disk.

A package is a Blueprint with the metadata the desktop shows (name, icon, category, tags,
...). Files are written atomically, so a crash mid-save leaves the old package or the new
one, and the list is read from the directory itself: a restart loses nothing (the
original listed only what its process had cached).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, Field, ValidationError

from orchestrator.blueprint import Blueprint, parse_blueprint
from sandbox.errors import NotFoundError
from sandbox.fsutil import atomic_write

__all__ = ["PACKAGE_ID_PATTERN", "Package", "PackageSummary", "Registry", "RegistryStats"]

logger = logging.getLogger("agentos.orchestrator.registry")

PACKAGE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,127}$"
_SUFFIX = ".aiapp"


class PackageSummary(BaseModel):
    """A package as the registry lists it."""

    id: str = Field(pattern=PACKAGE_ID_PATTERN)
    name: str
    description: str = ""
    icon: str = Field(default="", max_length=10)
    category: str = ""
    version: str = "1.0.0"
    author: str = ""
    created_at: float
    updated_at: float
    tags: list[str] = Field(default_factory=list, max_length=20)


class Package(PackageSummary):
    """A saved app: its metadata and its Blueprint."""

    blueprint: dict[str, Any]
    services: list[str] = Field(default_factory=list)
    permissions: list[str] = Field(default_factory=list)

    def summary(self) -> PackageSummary:
        """The package without its Blueprint."""
        return PackageSummary.model_validate(
            self.model_dump(include=set(PackageSummary.model_fields))
        )


class RegistryStats(BaseModel):
    """Counts over the registry."""

    total_packages: int
    categories: dict[str, int]
    last_updated: float | None


def package_id_for(name: str, when: float) -> str:
    """The original's id: the name as a slug, then the day (``notes-20261122``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100] or "app"
    day = dt.datetime.fromtimestamp(when, tz=dt.UTC).strftime("%Y%m%d")
    return f"{slug}-{day}"


class Registry:
    """Packages in ``directory``, one ``<id>.aiapp`` file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = trio.Lock()

    def _path(self, package_id: str) -> Path:
        if not re.fullmatch(PACKAGE_ID_PATTERN, package_id):
            msg = f"no package {package_id!r}"
            raise NotFoundError(msg)
        return self.directory / f"{package_id}{_SUFFIX}"

    def _read_all(self) -> list[Package]:
        packages: list[Package] = []
        if not self.directory.is_dir():
            return packages
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            try:
                packages.append(Package.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError) as exc:
                logger.warning("skipping unreadable package %s: %s", path, exc)
        return packages

    async def all(self, category: str | None = None) -> list[Package]:
        """Every package (of ``category``), by id, read from disk."""
        packages = await trio.to_thread.run_sync(self._read_all)
        return [p for p in packages if category is None or p.category == category]

    async def stats(self) -> RegistryStats:
        """Counts per category and the latest change."""
        packages = await self.all()
        categories: dict[str, int] = {}
        for package in packages:
            categories[package.category] = categories.get(package.category, 0) + 1
        return RegistryStats(
            total_packages=len(packages), categories=categories,
            last_updated=max((p.updated_at for p in packages), default=None),
        )  # fmt: skip

    async def get(self, package_id: str) -> Package:
        """One package.

        Raises:
            NotFoundError: there is none.
        """
        path = self._path(package_id)
        try:
            data = await trio.Path(path).read_bytes()
        except FileNotFoundError:
            msg = f"no package {package_id!r}"
            raise NotFoundError(msg) from None
        return Package.model_validate_json(data)

    async def save(
        self,
        blueprint: Blueprint,
        *,
        package_id: str | None = None,
        description: str | None = None,
        icon: str | None = None,
        category: str | None = None,
        tags: list[str] | None = None,
    ) -> Package:
        """Keep a Blueprint as a package (replacing one of the same id, keeping its birth)."""
        now = time.time()
        info = blueprint.app
        package_id = package_id or package_id_for(info.name, now)
        async with self._lock:
            try:
                created = (await self.get(package_id)).created_at
            except NotFoundError:
                created = now
            package = Package(
                id=package_id, name=info.name,
                description=description if description is not None else info.description,
                icon=icon if icon is not None else info.icon,
                category=category if category is not None else info.category,
                version=info.version or "1.0.0", author=info.author,
                created_at=created, updated_at=now, tags=tags if tags is not None else info.tags,
                blueprint=blueprint.to_json(), services=[s.name for s in blueprint.services],
                permissions=list(info.permissions),
            )  # fmt: skip
            data = package.model_dump_json(indent=1).encode()
            path = self._path(package_id)
            await trio.to_thread.run_sync(self._write, path, data)
        logger.info("saved package %s", package_id)
        return package

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, data, mode=0o600)

    async def delete(self, package_id: str) -> None:
        """Remove a package.

        Raises:
            NotFoundError: there is none.
        """
        path = self._path(package_id)
        async with self._lock:
            try:
                await trio.Path(path).unlink()
            except FileNotFoundError:
                msg = f"no package {package_id!r}"
                raise NotFoundError(msg) from None

    async def seed(self, directory: Path, *, server_tools: list[str]) -> list[str]:
        """Save each ``*.bp`` under ``directory`` whose package is missing; the ids saved.

        A prebuilt app's package id is its Blueprint's ``app.id``. A file that is not a
        valid Blueprint is logged and skipped (the others still seed).
        """
        saved: list[str] = []
        files = await trio.to_thread.run_sync(lambda: sorted(directory.glob("**/*.bp")))
        for path in files:
            try:
                data = await trio.Path(path).read_bytes()
                blueprint = parse_blueprint(data, server_tools=server_tools)
                package_id = blueprint.app.id.lower()
                try:
                    await self.get(package_id)
                except NotFoundError:
                    await self.save(blueprint, package_id=package_id)
                    saved.append(package_id)
            except Exception:
                logger.exception("could not seed %s", path)
        return saved
