"""Container states, exit statuses and run outcomes."""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from sandbox.errors import FailedPreconditionError, UnavailableError

__all__ = [
    "ContainerState",
    "ExitStatus",
    "IllegalTransitionError",
    "Outcome",
    "RuntimeFailedError",
    "RuntimeUnavailableError",
]


class RuntimeUnavailableError(UnavailableError):
    """The container runtime is missing or cannot work on this host."""


class RuntimeFailedError(FailedPreconditionError):
    """The container runtime refused an operation (its own message says why)."""


class IllegalTransitionError(FailedPreconditionError):
    """A container was asked to do something its state does not allow."""


class ContainerState(enum.StrEnum):
    """A container's life: created -> running -> stopped -> deleted."""

    CREATED = "created"  # init exists, the command has not started
    RUNNING = "running"
    STOPPED = "stopped"  # the command has ended; resources still held
    DELETED = "deleted"  # nothing left

    def check(self, new: ContainerState) -> None:
        """Raise IllegalTransitionError unless ``self -> new`` is a legal step."""
        if new not in _TRANSITIONS[self]:
            msg = f"a {self.value} container cannot become {new.value}"
            raise IllegalTransitionError(msg)


_TRANSITIONS: dict[ContainerState, frozenset[ContainerState]] = {
    ContainerState.CREATED: frozenset(
        {ContainerState.RUNNING, ContainerState.STOPPED, ContainerState.DELETED}
    ),
    ContainerState.RUNNING: frozenset({ContainerState.STOPPED}),
    ContainerState.STOPPED: frozenset({ContainerState.DELETED}),
    ContainerState.DELETED: frozenset(),
}


class Outcome(enum.StrEnum):
    """How a sandboxed run ended."""

    EXITED = "exited"  # the command ended by itself, with its own exit code
    OOM = "oom"  # the memory limit was hit and the kernel killed it (exit 137)
    TIMEOUT = "timeout"  # the wall-clock limit passed and we killed it (exit 137)
    KILLED = "killed"  # a signal ended it (exit 128 + signal)


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_init(cls, status: ExitStatus) -> ExitStatus:
        """The command's status from its init's: tini exits 128 + N when signal N killed it."""
        if status.code is not None and 128 < status.code <= 128 + 64:
            return cls(signal=status.code - 128)
        return status

    @property
    def shell_code(self) -> int:
        """What a shell reports: the code, or 128 + the signal (137 for SIGKILL)."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code if self.code is not None else 255

    def describe(self) -> str:
        """``exit 3`` or ``signal SIGKILL``."""
        if self.signal is not None:
            try:
                return f"signal {signal.Signals(self.signal).name}"
            except ValueError:
                return f"signal {self.signal}"
        return f"exit {self.code}"
