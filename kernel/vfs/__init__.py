"""The kernel's file namespace: mounts of host directories and memory, paths that stay put.

Backends: :class:`LocalFS` (a host directory, confined with openat2) and :class:`MemFS`
(memory, capped). The :class:`MountTable` routes a path to the deepest mount above it;
:func:`vpath` makes the clean absolute paths everything here takes.
"""

from kernel.vfs._apps import APP_GID_BASE as APP_GID_BASE
from kernel.vfs._apps import AppRoot as AppRoot
from kernel.vfs._apps import AppRoots as AppRoots
from kernel.vfs._backend import Backend as Backend
from kernel.vfs._backend import DirEntry as DirEntry
from kernel.vfs._backend import FileHandle as FileHandle
from kernel.vfs._backend import FileKind as FileKind
from kernel.vfs._backend import FileStat as FileStat
from kernel.vfs._backend import Parts as Parts
from kernel.vfs._backend import WriteMode as WriteMode
from kernel.vfs._fds import MAX_FDS as MAX_FDS
from kernel.vfs._fds import FdTable as FdTable
from kernel.vfs._fds import OpenFile as OpenFile
from kernel.vfs._localfs import LocalFS as LocalFS
from kernel.vfs._memfs import MemFS as MemFS
from kernel.vfs._mounts import Mount as Mount
from kernel.vfs._mounts import MountTable as MountTable
from kernel.vfs._path import ROOT as ROOT
from kernel.vfs._path import VPath as VPath
from kernel.vfs._path import vpath as vpath

__all__ = [
    "APP_GID_BASE",
    "MAX_FDS",
    "ROOT",
    "AppRoot",
    "AppRoots",
    "Backend",
    "DirEntry",
    "FdTable",
    "FileHandle",
    "FileKind",
    "FileStat",
    "LocalFS",
    "MemFS",
    "Mount",
    "MountTable",
    "OpenFile",
    "Parts",
    "VPath",
    "WriteMode",
    "vpath",
]
