"""The Docker runtime's base image, made from local files: no registry is needed.

The image is the same empty root the OCI runtime builds (mount points and the merged-/usr
symlinks); the host's /usr and the sandbox's own /etc files are bound in at run time.
"""

from __future__ import annotations

import io
import tarfile
import time

from sandbox.oci.rootfs import MOUNT_POINTS, HostLayout

__all__ = ["BASE_IMAGE", "base_image_tar"]

BASE_IMAGE = "agentos/sandbox-base:1"


def base_image_tar(host: HostLayout) -> bytes:
    """A tar of the base root for ``docker import``."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, kind: bytes, *, target: str = "", mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.mtime = now
            info.linkname = target
            tar.addfile(info)

        for name in (*MOUNT_POINTS, *host.dirs):
            add(name, tarfile.DIRTYPE, mode=0o1777 if name == "tmp" else 0o755)
        for name, target in host.links:
            add(name, tarfile.SYMTYPE, target=target, mode=0o777)
        for name in host.files:
            add(name, tarfile.REGTYPE, mode=0o644)  # mount points for host files
    return buffer.getvalue()
