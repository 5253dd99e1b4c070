"""Helpers for testing and measuring sandboxes: a Docker Engine of one's own.

No registry, no shared engine: :func:`private_dockerd` starts ``dockerd`` on a private
socket with its own data directory, with bridge networking and iptables off so that it
leaves the host's network alone (sandboxes use network none), and removes it all again.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sandbox.errors import UnavailableError
from sandbox.runtime import unix_socket_answers

__all__ = ["private_dockerd"]


@contextlib.contextmanager
def private_dockerd(*, start_timeout: float = 60.0) -> Iterator[str]:
    """Run a ``dockerd`` of our own for the block; yield its ``unix://`` URL.

    Raises:
        UnavailableError: dockerd is not installed or did not come up (its log's tail
            says why).
    """
    binary = shutil.which("dockerd")
    if binary is None:
        msg = "dockerd is not installed (apt-get install docker.io)"
        raise UnavailableError(msg)
    root = Path(tempfile.mkdtemp(prefix="aos-dockerd-", dir="/tmp"))
    sock = root / "docker.sock"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [binary, "--host", f"unix://{sock}",
         "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "dockerd.pid"),
         "--bridge", "none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + start_timeout
        while not unix_socket_answers(sock):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                msg = f"dockerd did not start: {tail}"
                raise UnavailableError(msg)
            time.sleep(0.2)
        yield f"unix://{sock}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)


def _unmount_below(root: Path) -> None:
    """Lazily unmount whatever dockerd left mounted under ``root`` (deepest first)."""
    mounts = [
        fields[4]
        for fields in (
            line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()
        )
        if fields[4].startswith(str(root))
    ]
    for mountpoint in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], check=False)  # noqa: S603, S607
