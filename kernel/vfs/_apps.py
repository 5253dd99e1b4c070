"""Each app's own files: ``/storage/apps/<app>``, which is also /data in its containers.

An app's directory is a volume shared by its containers (each runs as a uid of its own)
through a group of the app's: a gid reserved for it once and kept on disk, given to
every one of its containers as a supplementary group. With a quota it is an ext4 image
of that size, loop-mounted at the directory, so what the app's containers write there
and what the kernel writes there for it (``fs.write /storage/apps/<app>/...``) count
against the same limit, enforced by the filesystem itself.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import trio

from sandbox.runtime import (
    UID_BASE,
    UID_COUNT,
    UidAllocator,
    close_shared_volume,
    open_shared_volume,
)

__all__ = ["APP_GID_BASE", "AppRoot", "AppRoots"]

logger = logging.getLogger("agentos.kernel.vfs")

APP_GID_BASE = UID_BASE + UID_COUNT
"""The first app gid: just past the sandboxes' own uids (and gids), so never one of them."""

_APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_IMAGE_SUFFIX = ".img"


@dataclasses.dataclass(frozen=True)
class AppRoot:
    """An app's open directory.

    Attributes:
        app_id: the app.
        path: its directory on the host, mounted where the kernel shows ``/storage``.
        gid: the group its containers share it through.
        size: the bytes its volume holds at most, or None when it has no quota.
    """

    app_id: str
    path: Path
    gid: int
    size: int | None


class AppRoots:
    """Opens apps' directories under ``apps_dir``, their images kept in ``images_dir``.

    Args:
        apps_dir: where the apps' directories are (``<data>/storage/apps``).
        images_dir: where their volume images are kept, out of every app's sight.
        gids: the reservations of app gids (owner ``app:<id>``), kept across restarts.
    """

    def __init__(self, apps_dir: Path, images_dir: Path, gids: UidAllocator) -> None:
        self.apps_dir = apps_dir
        self.images_dir = images_dir
        self._gids = gids
        self._open: dict[str, AppRoot] = {}
        self._locks: dict[str, trio.Lock] = {}
        self._known: dict[str, int] | None = None

    @classmethod
    def under(cls, storage_dir: Path, state_dir: Path) -> AppRoots:
        """Apps' roots in ``storage_dir/apps``; images and gids in ``state_dir``."""
        gids = UidAllocator(state_dir / "app-gids", base=APP_GID_BASE, count=UID_COUNT)
        return cls(storage_dir / "apps", state_dir / "volumes", gids)

    def _gid(self, app_id: str) -> int:
        owner = f"app:{app_id}"
        if self._known is None:
            self._known = {name: gid for gid, name in self._gids.reserved().items()}
        gid = self._known.get(owner)
        if gid is None:
            gid = self._known[owner] = self._gids.reserve(owner)
        return gid

    async def open(self, app_id: str, *, quota: int | None = None) -> AppRoot:
        """The app's directory, made and mounted if need be.

        Args:
            app_id: the app.
            quota: the volume's size if it is made now; an existing volume keeps its own.

        Raises:
            ValueError: ``app_id`` is not an app id.
            VolumeError: the volume could not be made or mounted.
        """
        if not _APP_ID.fullmatch(app_id):
            msg = f"not an app id: {app_id!r}"
            raise ValueError(msg)
        if (root := self._open.get(app_id)) is not None:
            return root
        async with self._locks.setdefault(app_id, trio.Lock()):
            if (root := self._open.get(app_id)) is not None:
                return root
            gid = self._gid(app_id)
            path = self.apps_dir / app_id
            await trio.Path(self.apps_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
            image = self.images_dir / f"{app_id}{_IMAGE_SUFFIX}"
            size = await open_shared_volume(path, gid=gid, image=image, quota=quota)
            root = self._open[app_id] = AppRoot(app_id, path, gid, size)
            logger.info(
                "app %s: %s (gid %d, %s)", app_id, path, gid,
                f"a volume of {size} bytes" if size is not None else "no quota",
            )  # fmt: skip
            return root

    async def open_existing(self) -> list[str]:
        """Open every app that has a volume image, so its files are where the kernel looks.

        An app whose volume cannot be mounted is logged and left closed.

        Returns:
            The apps opened.
        """
        opened = []
        if await trio.Path(self.images_dir).is_dir():
            for image in sorted(self.images_dir.glob(f"*{_IMAGE_SUFFIX}")):
                app_id = image.name.removesuffix(_IMAGE_SUFFIX)
                try:
                    await self.open(app_id)
                except Exception:
                    logger.exception("could not open app %s's volume %s", app_id, image)
                else:
                    opened.append(app_id)
        return opened

    async def aclose(self) -> None:
        """Unmount every volume opened here; their files stay in their images."""
        for app_id in list(self._open):
            root = self._open.pop(app_id)
            try:
                await close_shared_volume(root.path)
            except Exception:
                logger.exception("could not unmount app %s's volume", app_id)
