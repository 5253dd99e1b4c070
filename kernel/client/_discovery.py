"""Where things live in the data directory, and how a client finds the running kernel.

    DATA_DIR/
      run/            0755  kernel.sock (the admin socket, 0600), kernel.json (who serves it)
      kernel/         0700  the kernel's own state
      orchestrator/   0700  the web tier's state (tokens, registry, sessions), owned by its uid

The data directory defaults to ``/var/lib/agentos`` for root, as for other system
daemons, and to the platform's per-user data directory (platformdirs) otherwise.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sandbox.fsutil import atomic_write

__all__ = [
    "SYSTEM_DATA_DIR",
    "DataLayout",
    "KernelRecord",
    "default_data_dir",
    "locate_admin_socket",
    "read_kernel_record",
    "write_kernel_record",
]

logger = logging.getLogger("agentos.kernel.client")

SYSTEM_DATA_DIR = Path("/var/lib/agentos")


def default_data_dir() -> Path:
    """The data directory used when neither ``--data-dir`` nor AGENTOS_DATA_DIR is given."""
    if os.geteuid() == 0:
        return SYSTEM_DATA_DIR
    return Path(platformdirs.user_data_dir("agentos", appauthor=False))


@dataclass(frozen=True)
class DataLayout:
    """The paths inside one data directory."""

    root: Path

    @property
    def run_dir(self) -> Path:
        """Runtime files: the admin socket and the record of who serves it."""
        return self.root / "run"

    @property
    def admin_socket(self) -> Path:
        """The admin socket's default path."""
        return self.run_dir / "kernel.sock"

    @property
    def kernel_record(self) -> Path:
        """The record the running kernel writes: its pid and socket path."""
        return self.run_dir / "kernel.json"

    @property
    def kernel_dir(self) -> Path:
        """The kernel's private state."""
        return self.root / "kernel"

    @property
    def storage_dir(self) -> Path:
        """The files of the kernel's /storage mount (apps' own under apps/<app>)."""
        return self.root / "storage"

    @property
    def orchestrator_dir(self) -> Path:
        """The orchestrator's private state."""
        return self.root / "orchestrator"


@dataclass(frozen=True)
class KernelRecord:
    """What a running kernel publishes about itself in ``run/kernel.json``."""

    pid: int
    socket: Path
    started_at: float
    version: str

    def is_alive(self) -> bool:
        """Whether the recorded pid still exists."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def write_kernel_record(layout: DataLayout, record: KernelRecord) -> None:
    """Publish ``record`` atomically."""
    document = {
        "pid": record.pid,
        "socket": os.fspath(record.socket),
        "started_at": record.started_at,
        "version": record.version,
    }
    atomic_write(layout.kernel_record, json.dumps(document).encode() + b"\n")


def read_kernel_record(layout: DataLayout) -> KernelRecord | None:
    """The published record, or None if there is none or it cannot be read."""
    try:
        document = json.loads(layout.kernel_record.read_text())
        return KernelRecord(
            pid=int(document["pid"]),
            socket=Path(document["socket"]),
            started_at=float(document["started_at"]),
            version=str(document["version"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable %s: %s", layout.kernel_record, exc)
        return None


def locate_admin_socket(data_dir: Path) -> Path:
    """The admin socket of the kernel running for ``data_dir``.

    The socket named in ``run/kernel.json`` if its kernel is alive, else the default
    path (where a kernel started with no ``--socket`` listens).
    """
    layout = DataLayout(data_dir)
    record = read_kernel_record(layout)
    if record is not None and record.is_alive():
        return record.socket
    return layout.admin_socket
