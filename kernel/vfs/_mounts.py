"""The mount table: which backend serves a path, by the longest mount point above it."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.abi import ErrorCode, SyscallExistsError, SyscallNotFoundError
from kernel.vfs._backend import Backend, Parts
from kernel.vfs._path import ROOT, VPath

__all__ = ["Mount", "MountTable"]


@dataclass(frozen=True)
class Mount:
    """A backend serving the namespace below ``point``."""

    point: VPath
    backend: Backend
    read_only: bool = False


class MountTable:
    """Mount points and their backends; paths route to the deepest one above them."""

    def __init__(self) -> None:
        self._mounts: dict[VPath, Mount] = {}

    def mount(self, point: VPath, backend: Backend, *, read_only: bool = False) -> Mount:
        """Serve ``point`` (a clean absolute path) and below with ``backend``.

        Raises:
            SyscallExistsError: EEXIST, something is mounted there already.
        """
        if point in self._mounts:
            msg = f"{point} is a mount point already"
            raise SyscallExistsError(msg)
        mount = self._mounts[point] = Mount(point, backend, read_only)
        return mount

    def unmount(self, point: VPath) -> Mount:
        """Stop serving ``point``; return what was mounted.

        Raises:
            SyscallNotFoundError: ENOENT, nothing is mounted there.
        """
        try:
            return self._mounts.pop(point)
        except KeyError:
            msg = f"{point} is not a mount point"
            raise SyscallNotFoundError(msg) from None

    def mounts(self) -> list[Mount]:
        """Every mount, by mount point."""
        return [self._mounts[point] for point in sorted(self._mounts)]

    def route(self, path: VPath) -> tuple[Mount, Parts]:
        """The mount serving ``path``, and ``path``'s parts below its point.

        Raises:
            SyscallNotFoundError: ENOENT, no mount is above ``path``.
        """
        for depth in range(len(path.parts), 0, -1):
            point = VPath(*path.parts[:depth])
            if (mount := self._mounts.get(point)) is not None:
                return mount, path.parts[depth:]
        msg = f"{path}: no file system is mounted there"
        raise SyscallNotFoundError(msg, code=ErrorCode.ENOENT)

    def points_below(self, path: VPath) -> list[str]:
        """Names under ``path`` that lead to mount points (how ``/`` is listed)."""
        depth = len(path.parts)
        return sorted(
            {point.parts[depth] for point in self._mounts if point.parts[:depth] == path.parts
             and len(point.parts) > depth}
        )  # fmt: skip

    def is_above_mounts(self, path: VPath) -> bool:
        """Whether ``path`` is ``/`` or leads to a mount point without being in a mount."""
        return path == ROOT or bool(self.points_below(path))
