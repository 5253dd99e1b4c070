"""Paths in the kernel's file namespace: absolute, clean, and never climbing.

A path a process names is made absolute from its working directory; ``.`` and empty
components are dropped; ``..`` is refused outright rather than resolved (a resolved
``..`` is how paths leave the place they were meant for), as are NUL bytes and names
too long for the filesystems below.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from kernel.abi import SyscallInvalidArgumentError

__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "ROOT", "VPath", "vpath"]

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255

VPath = PurePosixPath
"""A path of the kernel's file namespace: absolute, no ``.``, ``..`` or empty parts."""

ROOT = VPath("/")


def vpath(path: str, cwd: VPath = ROOT) -> VPath:
    """``path`` as a clean absolute namespace path, relative ones taken from ``cwd``.

    Raises:
        SyscallInvalidArgumentError: EINVAL, a ``..`` component, a NUL byte, or a path
            or name too long.
    """
    if "\0" in path:
        msg = "a path cannot hold a NUL byte"
        raise SyscallInvalidArgumentError(msg)
    if len(path.encode(errors="surrogatepass")) > MAX_PATH_BYTES:
        msg = f"a path is at most {MAX_PATH_BYTES} bytes"
        raise SyscallInvalidArgumentError(msg)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    for part in parts:
        if part == "..":
            msg = f"'..' is not allowed in paths: {path!r}"
            raise SyscallInvalidArgumentError(msg)
        if len(part.encode(errors="surrogatepass")) > MAX_NAME_BYTES:
            msg = f"a name is at most {MAX_NAME_BYTES} bytes: {part[:32]!r}..."
            raise SyscallInvalidArgumentError(msg)
    base = ROOT if path.startswith("/") else cwd
    return base.joinpath(*parts)
