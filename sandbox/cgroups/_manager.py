"""Finding the host's cgroup hierarchies and handing out cgroups in them."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.cgroups._base import Cgroup
from sandbox.cgroups._types import CgroupError, CgroupMode
from sandbox.cgroups._v1 import V1_CONTROLLERS, V1Cgroup
from sandbox.cgroups._v2 import V2Cgroup

__all__ = ["DEFAULT_ROOT", "CgroupLayout", "CgroupManager", "detect_layout"]

DEFAULT_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupLayout:
    """The hierarchies mounted under one root.

    Attributes:
        mode: pure v2, hybrid or v1.
        unified: the v2 hierarchy, if any.
        v1: the v1 controllers we manage, each with its mountpoint.
        hierarchies: every hierarchy root, ours or not (cpuset, devices, named ones, the
            empty unified one of a hybrid host): runtimes make their cgroups in all of
            them, so cleanup must look in all of them.
    """

    mode: CgroupMode
    unified: Path | None
    v1: Mapping[str, Path] = field(default_factory=dict)
    hierarchies: tuple[Path, ...] = ()

    def describe(self) -> str:
        """One line for logs and ``sys.info``."""
        if self.mode is CgroupMode.V2:
            return f"cgroup v2 at {self.unified}"
        where = ", ".join(f"{c}={p}" for c, p in sorted(self.v1.items()))
        return f"cgroup {self.mode} (v1 controllers {where})"


def detect_layout(root: Path = DEFAULT_ROOT) -> CgroupLayout:
    """Tell pure v2, hybrid and v1 apart by what is mounted at ``root``.

    Raises:
        CgroupError: nothing usable is mounted there.
    """
    if (root / "cgroup.controllers").is_file():
        return CgroupLayout(mode=CgroupMode.V2, unified=root, hierarchies=(root,))
    v1: dict[str, Path] = {}
    hierarchies: list[Path] = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                continue
            if (entry / "cgroup.procs").is_file():
                hierarchies.append(entry)
            for controller in entry.name.split(","):  # "cpu,cpuacct" holds both
                if controller in V1_CONTROLLERS:
                    v1[controller] = entry
    if not v1:
        msg = f"no cgroup controllers are mounted at {root}"
        raise CgroupError(msg)
    unified_root = root / "unified"
    unified = unified_root if (unified_root / "cgroup.controllers").is_file() else None
    return CgroupLayout(
        mode=CgroupMode.HYBRID if unified else CgroupMode.V1,
        unified=unified,
        v1=v1,
        hierarchies=tuple(dict.fromkeys([*v1.values(), *hierarchies])),
    )


class CgroupManager:
    """Cgroups under one root, whichever version the host runs.

    Args:
        root: where the hierarchies are mounted; a fake tree in unit tests.
    """

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self.layout = detect_layout(root)

    @property
    def mode(self) -> CgroupMode:
        """v2, hybrid or v1."""
        return self.layout.mode

    def cgroup(self, name: str) -> Cgroup:
        """The cgroup ``name`` (``agentos/c1``), existing or not."""
        if self.layout.mode is CgroupMode.V2:
            assert self.layout.unified is not None
            return V2Cgroup(self.layout.unified, name)
        ours = set(self.layout.v1.values())
        others = [h for h in self.layout.hierarchies if h not in ours]
        return V1Cgroup(self.layout.v1, name, others=others)

    def children(self, name: str) -> list[str]:
        """Names of the cgroups directly below ``name``, in any hierarchy."""
        found: set[str] = set()
        for hierarchy in self.layout.hierarchies:
            directory = hierarchy / name
            if directory.is_dir():
                found |= {f"{name}/{c.name}" for c in directory.iterdir() if c.is_dir()}
        return sorted(found)

    def remove_if_empty(self, name: str) -> None:
        """Remove an intermediate cgroup (``agentos``) wherever nothing is below or in it.

        Runtimes remove the leaves they made, not the parents; those stay behind in every
        hierarchy unless removed here.
        """
        for hierarchy in self.layout.hierarchies:
            with contextlib.suppress(FileNotFoundError, OSError):
                (hierarchy / name).rmdir()
