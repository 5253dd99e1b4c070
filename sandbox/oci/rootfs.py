"""Root filesystems without images: an empty root that borrows the host's /usr, read-only.

On merged-/usr hosts (Debian 12 and most current distributions) ``/bin``, ``/lib`` and
friends are symlinks into ``/usr``: the sandbox gets the same symlinks. On split hosts
they are real directories: the sandbox gets each as a read-only bind mount. Either way
the sandbox sees the host's programs and libraries and can change none of them. The
root also holds a small generated ``/etc`` naming the sandbox's own user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MOUNT_POINTS", "TOP_LEVEL_DIRS", "HostLayout", "build_rootfs", "host_mounts"]

TOP_LEVEL_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
"""Directories that merged-/usr hosts turn into symlinks into /usr."""

MOUNT_POINTS = ("proc", "dev", "sys", "tmp", "usr", "data", "run", "etc")
"""The empty directories every sandbox root has, for what is mounted on them."""
# Host files worth seeing read-only: the dynamic linker's cache and the time zone.
_HOST_FILES = ("etc/ld.so.cache", "etc/localtime")
_RO_BIND = ("rbind", "ro", "nosuid", "nodev")


@dataclass(frozen=True)
class HostLayout:
    """How the host arranges its top-level program and library directories.

    Attributes:
        root: the host's root (``/``; a fake tree in tests).
        links: top-level names that are symlinks, with their targets (merged /usr).
        dirs: top-level names that are real directories (split /usr).
        files: host files to bind read-only, relative to the root.
    """

    root: Path
    links: tuple[tuple[str, str], ...]
    dirs: tuple[str, ...]
    files: tuple[str, ...]

    @classmethod
    def detect(cls, root: Path = Path("/")) -> HostLayout:
        """Read the layout of the host mounted at ``root``."""
        links: list[tuple[str, str]] = []
        dirs: list[str] = []
        for name in TOP_LEVEL_DIRS:
            path = root / name
            if path.is_symlink():
                links.append((name, os.fspath(path.readlink())))
            elif path.is_dir():
                dirs.append(name)
        files = tuple(f for f in _HOST_FILES if (root / f).is_file())
        return cls(root=root, links=tuple(links), dirs=tuple(dirs), files=files)

    @property
    def merged_usr(self) -> bool:
        """Whether every top-level program directory is a symlink into /usr."""
        return not self.dirs


def host_mounts(host: HostLayout) -> list[dict[str, Any]]:
    """The OCI mounts that show the host's programs read-only: /usr, split dirs, files."""
    mounts = [_ro_bind(host.root / "usr", "/usr")]
    mounts += [_ro_bind(host.root / name, f"/{name}") for name in host.dirs]
    mounts += [_ro_bind(host.root / name, f"/{name}") for name in host.files]
    return mounts


def _ro_bind(source: Path, destination: str) -> dict[str, Any]:
    return {
        "destination": destination,
        "type": "bind",
        "source": os.fspath(source),
        "options": list(_RO_BIND),
    }


def build_rootfs(path: Path, host: HostLayout, *, uid: int, gid: int, hostname: str) -> None:
    """Make the root directory of one sandbox at ``path`` (which must not exist yet).

    Modes are set explicitly, whatever the creating process's umask: the sandbox's uid
    must be able to walk and read what is not its own.
    """
    for directory in (path, *(path / name for name in (*MOUNT_POINTS, *host.dirs))):
        directory.mkdir()
        directory.chmod(0o755)
    for name, target in host.links:
        (path / name).symlink_to(target)
    etc = path / "etc"
    for name in host.files:
        (path / name).touch()  # mount point for the host file
        (path / name).chmod(0o644)
    files = {
        "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"sandbox:x:{uid}:{gid}:AgentOS sandbox:/data:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": f"root:x:0:\nsandbox:x:{gid}:\nnogroup:x:65534:\n",
        "hostname": f"{hostname}\n",
        "hosts": f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
        "resolv.conf": "",
    }
    for name, text in files.items():
        (etc / name).write_text(text)
        (etc / name).chmod(0o644)
