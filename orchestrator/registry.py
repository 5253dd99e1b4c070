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
from pydantic import BaseModel, Field

from orchestrator.blueprint import Blueprint, parse_blueprint
from orchestrator.records import RECORD_ID_PATTERN, RecordDirectory
from sandbox.errors import NotFoundError

__all__ = ["PACKAGE_ID_PATTERN", "Package", "PackageSummary", "Registry", "RegistryStats"]

logger = logging.getLogger("agentos.orchestrator.registry")

PACKAGE_ID_PATTERN = RECORD_ID_PATTERN
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
        self._files = RecordDirectory(directory, Package, suffix=_SUFFIX, kind="package")
        self._lock = trio.Lock()

    async def all(self, category: str | None = None) -> list[Package]:
        """Every package (of ``category``), by id, read from disk."""
        packages = await self._files.read_all()
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
        return await self._files.read(package_id)

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
            await self._files.write(package_id, package)
        logger.info("saved package %s", package_id)
        return package

    async def delete(self, package_id: str) -> None:
        """Remove a package.

        Raises:
            NotFoundError: there is none.
        """
        async with self._lock:
            await self._files.delete(package_id)

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
