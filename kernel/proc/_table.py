"""The process table: every process the kernel knows, its parent, state and capabilities."""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kernel.abi import ErrorCode, SyscallExhaustedError, SyscallNotFoundError
from kernel.abi.process import ProcessInfo, ProcessState
from sandbox.capabilities import Capability
from sandbox.errors import FailedPreconditionError

__all__ = ["KERNEL_PID", "IllegalTransitionError", "Process", "ProcessTable"]

KERNEL_PID = 0
"""The kernel's own pid: the parent of processes the admin socket creates."""

_TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.RUNNING: frozenset({ProcessState.EXITED}),
    ProcessState.EXITED: frozenset(),
}


class IllegalTransitionError(FailedPreconditionError):
    """A process was asked to move to a state it cannot reach from its current one."""


@dataclass
class Process:
    """One entry of the process table. Mutated only through its methods."""

    pid: int
    ppid: int
    name: str
    app_id: str | None
    capabilities: frozenset[Capability]
    created_at: float
    state: ProcessState = ProcessState.RUNNING
    exited_at: float | None = None
    exit_code: int | None = None
    term_signal: int | None = None
    children: set[int] = field(default_factory=set)

    def _move(self, new: ProcessState) -> None:
        if new not in _TRANSITIONS[self.state]:
            msg = f"process {self.pid} cannot go from {self.state} to {new}"
            raise IllegalTransitionError(msg)
        self.state = new

    def mark_exited(self, *, at: float, exit_code: int | None, term_signal: int | None) -> None:
        """Record the end of the process."""
        self._move(ProcessState.EXITED)
        self.exited_at = at
        self.exit_code = exit_code
        self.term_signal = term_signal

    def info(self) -> ProcessInfo:
        """The ABI view of this process."""
        return ProcessInfo(
            pid=self.pid,
            ppid=self.ppid,
            name=self.name,
            app_id=self.app_id,
            state=self.state,
            capabilities=sorted(self.capabilities),
            created_at=self.created_at,
            exited_at=self.exited_at,
            exit_code=self.exit_code,
            term_signal=self.term_signal,
        )


class ProcessTable:
    """Live processes by pid, with parent links. Pids are never reused within a run."""

    def __init__(
        self, *, max_processes: int = 4096, clock: Callable[[], float] = time.time
    ) -> None:
        self._processes: dict[int, Process] = {}
        self._next_pid = itertools.count(1)
        self._max = max_processes
        self._clock = clock

    def __len__(self) -> int:
        return len(self._processes)

    def get(self, pid: int) -> Process:
        """The live process ``pid``.

        Raises:
            SyscallNotFoundError: ESRCH, no such process.
        """
        try:
            return self._processes[pid]
        except KeyError:
            raise SyscallNotFoundError(f"no such process {pid}", code=ErrorCode.ESRCH) from None

    def is_within(self, pid: int, ancestor: int) -> bool:
        """Whether ``pid`` is ``ancestor`` or one of its descendants."""
        while pid != ancestor:
            process = self._processes.get(pid)
            if process is None or process.ppid == pid:
                return False
            pid = process.ppid
        return True

    def live(self) -> list[Process]:
        """Live processes, oldest first."""
        return list(self._processes.values())

    def spawn(
        self,
        *,
        name: str,
        ppid: int,
        app_id: str | None = None,
        capabilities: Iterable[Capability] = (),
    ) -> Process:
        """Add a running process under ``ppid`` (``KERNEL_PID`` for top-level ones).

        Raises:
            SyscallNotFoundError: ESRCH, the parent does not exist.
            SyscallExhaustedError: the table is full.
        """
        parent = None if ppid == KERNEL_PID else self.get(ppid)
        if len(self._processes) >= self._max:
            msg = f"process table is full ({self._max} processes)"
            raise SyscallExhaustedError(msg)
        process = Process(
            pid=next(self._next_pid),
            ppid=ppid,
            name=name,
            app_id=app_id,
            capabilities=frozenset(capabilities),
            created_at=self._clock(),
        )
        self._processes[process.pid] = process
        if parent is not None:
            parent.children.add(process.pid)
        return process

    def kill(self, pid: int, *, sig: int = signal.SIGKILL) -> list[Process]:
        """End ``pid`` and all its descendants, deepest first, and drop them from the table.

        Returns:
            The ended processes, ``pid`` last.

        Raises:
            SyscallNotFoundError: ESRCH, no such process.
        """
        root = self.get(pid)
        doomed: list[Process] = []
        stack = [root]
        while stack:
            process = stack.pop()
            doomed.append(process)
            stack.extend(self._processes[child] for child in sorted(process.children))
        now = self._clock()
        ended = list(reversed(doomed))
        for process in ended:
            process.mark_exited(at=now, exit_code=None, term_signal=int(sig))
            del self._processes[process.pid]
        parent = self._processes.get(root.ppid)
        if parent is not None:
            parent.children.discard(root.pid)
        return ended
