"""Opening paths that cannot leave a directory: openat2(2) with RESOLVE_BENEATH.

The kernel resolves the whole path itself, atomically, below a directory descriptor,
refusing ``..`` above it, absolute paths, and every symlink and magic link on the way
(``RESOLVE_NO_SYMLINKS``): a symlink swapped in while a call runs changes nothing. Linux
5.6 or newer; Python has no binding, so it goes through libc's ``syscall``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os

__all__ = ["open_beneath", "rename_noreplace"]

_SYS_OPENAT2 = 437  # the same in the generic table (arm64) and on x86_64
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
_RENAME_NOREPLACE = 1
_RETRIES = 16  # EAGAIN: a rename raced the resolution; the kernel asks us to try again


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def open_beneath(directory: int, path: str, flags: int, mode: int = 0) -> int:
    """openat2(``directory``, ``path``) confined below ``directory``; a new descriptor.

    ``path`` is relative (``"."`` for the directory itself). With ``O_PATH |
    O_NOFOLLOW`` a final symlink is opened as itself; otherwise any symlink fails ELOOP.

    Raises:
        OSError: as openat2 fails (ELOOP for a symlink, EXDEV for an escape...).
    """
    creating = flags & (os.O_CREAT | os.O_TMPFILE) != 0
    how = _OpenHow(flags | os.O_CLOEXEC, mode if creating else 0, _RESOLVE)
    encoded = os.fsencode(path)
    for _ in range(_RETRIES):
        fd = _libc().syscall(
            _SYS_OPENAT2, directory, encoded, ctypes.byref(how), ctypes.sizeof(how)
        )
        if fd >= 0:
            return int(fd)
        number = ctypes.get_errno()
        if number != errno.EAGAIN:
            raise OSError(number, os.strerror(number), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def rename_noreplace(source_dir: int, source: str, target_dir: int, target: str) -> None:
    """renameat2(..., RENAME_NOREPLACE): rename a name; EEXIST if the target exists.

    Raises:
        OSError: as renameat2 fails.
    """
    result = _libc().renameat2(
        source_dir, os.fsencode(source), target_dir, os.fsencode(target), _RENAME_NOREPLACE
    )
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number), target)
