"""The interface every cgroup implementation offers, and the file helpers they share."""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from sandbox.cgroups._types import CgroupError, CgroupStats, Resources

__all__ = ["GONE", "Cgroup", "read_int", "read_keyed", "remove_dir", "write_value"]

GONE = frozenset({errno.ENOENT, errno.ENODEV})
"""What reading a cgroup's files fails with once it is removed, or while it is."""

_POLL_SECONDS = 0.005


def write_value(path: Path, value: str | int) -> None:
    """Write one value to a cgroup file.

    Raises:
        CgroupError: the kernel refused it (naming the file and the reason).
    """
    try:
        with path.open("w") as file:
            file.write(str(value))
    except OSError as exc:
        msg = f"cannot write {value!r} to {path}: {os.strerror(exc.errno or errno.EIO)}"
        raise CgroupError(msg) from exc


def remove_dir(path: Path, *, attempts: int = 100) -> None:
    """Remove a cgroup directory; retry while the kernel still calls it busy.

    A process that just died may still be leaving it. Absent is fine.

    Raises:
        CgroupError: it stays busy, or the kernel refuses for another reason.
    """
    for _ in range(attempts):
        try:
            path.rmdir()
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                msg = f"cannot remove cgroup {path}: {exc.strerror}"
                raise CgroupError(msg) from exc
            time.sleep(0.01)
        else:
            return
    msg = f"cgroup {path} still busy"
    raise CgroupError(msg)


def read_int(path: Path) -> int:
    """A file holding one integer."""
    return int(path.read_text().strip())


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed file (``key value`` per line) such as memory.events or cpu.stat."""
    values: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


class Cgroup(abc.ABC):
    """One cgroup, named by its path below the hierarchy root (``agentos/c1``)."""

    def __init__(self, name: str) -> None:
        if not name or name.startswith("/") or ".." in name.split("/"):
            msg = f"invalid cgroup name {name!r}"
            raise CgroupError(msg)
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether the cgroup's directory exists."""

    @abc.abstractmethod
    def create(self) -> None:
        """Make the cgroup (and its parents), ready to take processes and limits."""

    @abc.abstractmethod
    def delete(self) -> None:
        """Remove the cgroup; it must hold no processes (see :meth:`kill`)."""

    @abc.abstractmethod
    def add(self, pid: int) -> None:
        """Move a process into the cgroup."""

    @abc.abstractmethod
    def pids(self) -> list[int]:
        """The processes in the cgroup (not its children)."""

    @abc.abstractmethod
    def apply(self, resources: Resources) -> None:
        """Set the limits that ``resources`` names."""

    @abc.abstractmethod
    def stats(self) -> CgroupStats:
        """Current counters."""

    @abc.abstractmethod
    def _set_frozen(self, *, frozen: bool) -> None: ...

    @abc.abstractmethod
    def is_frozen(self) -> bool:
        """Whether every process in the cgroup is frozen."""

    def freeze(self, *, timeout: float = 5.0, attempts: int = 3) -> None:
        """Stop every process in the cgroup; return once they are all stopped.

        A v1 freezer can stall for good when it catches a vfork in flight (the parent
        waits for a child already frozen); each attempt that stalls is undone (thawed)
        and tried again, and a freeze that never completes leaves the cgroup thawed.

        Raises:
            CgroupError: it did not freeze within ``timeout`` (it is thawed again).
        """
        for attempt in range(attempts):
            self._set_frozen(frozen=True)
            try:
                self._wait(self.is_frozen, timeout / attempts, "freeze")
            except CgroupError:
                self._set_frozen(frozen=False)
                if attempt == attempts - 1:
                    msg = f"cgroup {self.name} did not freeze within {timeout:.1f} s"
                    raise CgroupError(msg) from None
                time.sleep(_POLL_SECONDS)
            else:
                return

    def thaw(self, *, timeout: float = 5.0) -> None:
        """Let the cgroup's processes run again."""
        self._set_frozen(frozen=False)
        self._wait(lambda: not self.is_frozen(), timeout, "thaw")

    def kill(self, *, timeout: float = 10.0) -> None:
        """SIGKILL every process in the cgroup, forks in flight included; wait until empty.

        Freeze, signal, thaw: a frozen process cannot fork, so none escapes the sweep.
        """
        if not self.exists():
            return
        with self._gone_is_empty():
            deadline = time.monotonic() + timeout
            while self.pids():
                try:
                    with contextlib.suppress(CgroupError):  # unfrozen, the sweep still kills
                        self.freeze(timeout=max(0.1, (deadline - time.monotonic()) / 2))
                    _kill_all(self.pids())
                finally:
                    self._set_frozen(frozen=False)  # never left frozen: SIGKILL waits for thaw
                self._wait(lambda: not self.pids(), max(0.1, deadline - time.monotonic()), "empty")

    def kill_tree(self, pid: int, *, rounds: int = 3) -> int:
        """SIGKILL process ``pid`` of this cgroup and all its descendants here.

        A cancelled exec's command must die with everything it started, whatever its
        process group or session (runtimes differ) and whatever signals it ignores.
        Several rounds catch children forked while the first was being killed.

        Returns:
            How many processes were signalled.
        """
        killed: set[int] = set()
        for _ in range(rounds):
            parents = {child: _parent_of(child) for child in self.pids()}
            doomed = {pid} if pid in parents else set()
            grew = True
            while grew:
                more = {child for child, parent in parents.items() if parent in doomed}
                grew = not more <= doomed
                doomed |= more
            if not doomed - killed:
                break
            _kill_all(doomed - killed)
            killed |= doomed
        return len(killed)

    @contextlib.contextmanager
    def _gone_is_empty(self) -> Iterator[None]:
        """A cgroup removed meanwhile (by whoever saw its last process go) holds nothing."""
        try:
            yield
        except (CgroupError, OSError):
            if self.exists():
                raise

    def _wait(self, done: object, timeout: float, what: str) -> None:
        assert callable(done)
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                msg = f"cgroup {self.name} did not {what} within {timeout:.1f} s"
                raise CgroupError(msg)
            time.sleep(_POLL_SECONDS)


def _parent_of(pid: int) -> int:
    """``pid``'s parent, or 0 once it has gone."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat_line.rpartition(")")[2].split()[1])


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
