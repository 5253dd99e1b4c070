"""The process table: every process the kernel knows, its parent, state and capabilities."""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from kernel.abi import ErrorCode, SyscallExhaustedError, SyscallNotFoundError
from kernel.abi.process import ContainerInfo, ExitReason, ProcessInfo, ProcessState
from kernel.proc._output import OutputLog
from sandbox.capabilities import Grant
from sandbox.errors import FailedPreconditionError

if TYPE_CHECKING:
    from sandbox.policy import Policy
    from sandbox.runtime import Container

__all__ = ["KERNEL_PID", "IllegalTransitionError", "Process", "ProcessTable"]

logger = logging.getLogger("agentos.kernel.proc")

KERNEL_PID = 0
"""The kernel's own pid: the parent of processes the admin socket creates."""

_TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.RUNNING: frozenset({ProcessState.SUSPENDED, ProcessState.EXITED}),
    ProcessState.SUSPENDED: frozenset({ProcessState.RUNNING, ProcessState.EXITED}),
    ProcessState.EXITED: frozenset(),
}


class IllegalTransitionError(FailedPreconditionError):
    """A process was asked to move to a state it cannot reach from its current one."""


@dataclass(eq=False)
class Process:
    """One entry of the process table. Its state changes only through its methods.

    Attributes:
        container: the container its command runs in, while it runs (None for a process
            without a command, and once its container is gone).
        runtime: the name of the runtime that made its container.
        ending: why it is being ended, once the kernel has decided to end it (its
            container's exit then reports that reason rather than its own).
        finishing: its end is being recorded (by exactly one task).
        launching: set once its container's launch has settled (None: never launched).
        ended: set once it has exited.
        freezer: held while its container is frozen or thawed, so that a suspend and a
            resume (or an end) never interleave.
        output: its command's recent output (None: it has no command).
    """

    pid: int
    ppid: int
    name: str
    app_id: str | None
    capabilities: frozenset[Grant]
    created_at: float
    policy: Policy | None = None
    detached: bool = False
    priority: int = 0
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    state: ProcessState = ProcessState.RUNNING
    exited_at: float | None = None
    exit_reason: ExitReason | None = None
    exit_code: int | None = None
    term_signal: int | None = None
    children: set[int] = field(default_factory=set)
    container: Container | None = None
    runtime: str | None = None
    container_id: str | None = None
    container_uid: int | None = None
    ending: ExitReason | None = None
    finishing: bool = False
    launching: trio.Event | None = None
    ended: trio.Event = field(default_factory=trio.Event)
    freezer: trio.Lock = field(default_factory=trio.Lock)
    output: OutputLog | None = None

    def move(self, new: ProcessState) -> None:
        """Change state.

        Raises:
            IllegalTransitionError: ``new`` cannot follow the current state.
        """
        if new not in _TRANSITIONS[self.state]:
            msg = f"process {self.pid} is {self.state}, it cannot become {new}"
            raise IllegalTransitionError(msg)
        self.state = new

    def info(self) -> ProcessInfo:
        """The ABI view of this process."""
        container = None
        if self.container_id is not None:
            assert self.runtime is not None
            assert self.container_uid is not None
            live = self.container is not None and self.state is not ProcessState.EXITED
            container = ContainerInfo(
                id=self.container_id,
                runtime=self.runtime,
                uid=self.container_uid,
                os_pid=self.container.pid if live and self.container is not None else 0,
            )
        return ProcessInfo(
            pid=self.pid,
            ppid=self.ppid,
            name=self.name,
            app_id=self.app_id,
            state=self.state,
            policy=self.policy.name if self.policy is not None else None,
            capabilities=sorted(self.capabilities),
            detached=self.detached,
            priority=self.priority,
            container=container,
            created_at=self.created_at,
            exited_at=self.exited_at,
            exit_reason=self.exit_reason,
            exit_code=self.exit_code,
            term_signal=self.term_signal,
        )


class ProcessTable:
    """Live processes by pid, with parent links, and the most recently exited ones.

    Pids are never reused within a run. An exited process stays findable (for
    ``proc.wait`` and ``proc.info``) until ``keep_exited`` later ones have exited.
    """

    def __init__(
        self,
        *,
        max_processes: int = 4096,
        keep_exited: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._processes: dict[int, Process] = {}
        self._exited: collections.OrderedDict[int, Process] = collections.OrderedDict()
        self._next_pid = itertools.count(1)
        self._max = max_processes
        self._keep_exited = keep_exited
        self._clock = clock
        self._on_exit: list[Callable[[int], object]] = []

    def on_exit(self, release: Callable[[int], object]) -> None:
        """Call ``release(pid)`` when a process exits: what it held goes with it."""
        self._on_exit.append(release)

    def __len__(self) -> int:
        return len(self._processes)

    def get(self, pid: int) -> Process:
        """The live process ``pid``.

        Raises:
            SyscallNotFoundError: ESRCH, no such live process.
        """
        try:
            return self._processes[pid]
        except KeyError:
            raise SyscallNotFoundError(f"no such process {pid}", code=ErrorCode.ESRCH) from None

    def find(self, pid: int) -> Process:
        """The process ``pid``, live or recently exited.

        Raises:
            SyscallNotFoundError: ESRCH, never existed or exited too long ago.
        """
        process = self._processes.get(pid) or self._exited.get(pid)
        if process is None:
            raise SyscallNotFoundError(f"no such process {pid}", code=ErrorCode.ESRCH)
        return process

    def is_within(self, pid: int, ancestor: int) -> bool:
        """Whether ``pid`` is ``ancestor`` or one of its descendants (live or exited)."""
        visited: set[int] = set()
        while pid != ancestor:
            process = self._processes.get(pid) or self._exited.get(pid)
            if process is None or pid in visited:
                return False
            visited.add(pid)
            pid = process.ppid
        return True

    def live_process(self, pid: int) -> Process | None:
        """Live process ``pid``, or None."""
        return self._processes.get(pid)

    def live(self) -> list[Process]:
        """Live processes, oldest first."""
        return list(self._processes.values())

    def counts(self) -> dict[str, int]:
        """Live processes by state."""
        return dict(collections.Counter(p.state.value for p in self._processes.values()))

    def spawn(
        self,
        *,
        name: str,
        ppid: int,
        app_id: str | None = None,
        capabilities: Iterable[Grant] = (),
        policy: Policy | None = None,
        detached: bool = False,
        env: dict[str, str] | None = None,
    ) -> Process:
        """Add a running process under ``ppid`` (``KERNEL_PID`` for top-level ones).

        It starts with ``env`` if given, else a copy of its parent's environment, and in
        its parent's working directory (``/`` under the kernel).

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
            policy=policy,
            detached=detached,
            env=dict(env if env is not None else parent.env if parent is not None else {}),
            cwd=parent.cwd if parent is not None else "/",
        )
        self._processes[process.pid] = process
        if parent is not None:
            parent.children.add(process.pid)
        return process

    def descendants(self, pid: int) -> list[Process]:
        """The live descendants of ``pid``, deepest first."""
        found: list[Process] = []
        stack = [self.get(pid)]
        while stack:
            process = stack.pop()
            if process.pid != pid:
                found.append(process)
            stack.extend(
                self._processes[child] for child in sorted(process.children)
                if child in self._processes
            )  # fmt: skip
        return list(reversed(found))

    def forget_exited(self) -> int:
        """Drop the records of exited processes; how many there were."""
        count = len(self._exited)
        self._exited.clear()
        return count

    def mark_exited(
        self,
        process: Process,
        *,
        reason: ExitReason,
        exit_code: int | None = None,
        term_signal: int | None = None,
    ) -> None:
        """Record the end of a live process; its live children go to the kernel.

        Raises:
            IllegalTransitionError: it has exited already.
        """
        process.move(ProcessState.EXITED)
        process.exited_at = self._clock()
        process.exit_reason = reason
        process.exit_code = exit_code
        process.term_signal = term_signal
        process.container = None
        del self._processes[process.pid]
        parent = self._processes.get(process.ppid)
        if parent is not None:
            parent.children.discard(process.pid)
        for child in process.children:
            if orphan := self._processes.get(child):
                orphan.ppid = KERNEL_PID
        process.children.clear()
        self._exited[process.pid] = process
        while len(self._exited) > self._keep_exited:
            self._exited.popitem(last=False)
        for release in self._on_exit:
            try:
                release(process.pid)
            except Exception:  # one holder's bug must not keep the others' resources
                logger.exception("releasing what pid %d held failed", process.pid)
        process.ended.set()
