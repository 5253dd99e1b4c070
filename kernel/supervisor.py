"""Processes' containers: made, watched, ended, and asked for what the calls need.

A process with a command runs in a container of its own, made by the sandbox runtime
under the process's policy, with a kernel socket (``/run/agentos/kernel.sock`` inside)
whose every call acts as that process. A watcher waits for the container's end and
records why it ended: by itself, OOM (read from its cgroup), its policy's timeout, or a
kill. Children that are not detached end with their parent.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import trio

from kernel.abi import (
    ErrorCode,
    SyscallError,
    SyscallNotFoundError,
    SyscallPreconditionError,
    SyscallUnavailableError,
)
from kernel.abi.events import EventKind
from kernel.abi.process import (
    Command,
    ExecItem,
    ExecResult,
    ExitReason,
    OutputStream,
    ProcessState,
)
from kernel.calls import Caller, CallTable
from kernel.client import agentos_kernel
from kernel.proc import OutputLog, Process, ProcessTable
from kernel.sched import Scheduler
from kernel.server import PeerCredentials, bind_process_socket, serve_process_socket
from kernel.vfs import AppRoot, AppRoots
from sandbox.cgroups import CgroupStats
from sandbox.errors import AgentOSError
from sandbox.oci.spec import KERNEL_PYTHON, KERNEL_SOCKET, ProcessSpec
from sandbox.policy import Policy
from sandbox.runtime import Container, ExitStatus, Runtime, Stdio, VolumeError

__all__ = ["Publish", "Supervisor"]

logger = logging.getLogger("agentos.kernel.proc")

Publish = Callable[..., object]
"""Where lifecycle events go: ``publish(kind, pid=..., **data)``."""

_STOP_SECONDS = 30.0  # for ending a container, shielded from cancellation
_DRAIN_SECONDS = 1.0  # for an exec's output after its process has ended
_CHUNK = 64 * 1024
_LIMIT_POLL_SECONDS = 1.0  # how often a running container's limit counters are read


def _check_not_ending(process: Process) -> None:
    """Stop a launch whose process was ended meanwhile (its launch then cleans up)."""
    if process.ending is not None:
        msg = f"process {process.pid} was ended ({process.ending.value}) while it started"
        raise SyscallNotFoundError(msg, code=ErrorCode.ESRCH)


@contextlib.contextmanager
def _while_alive(process: Process) -> Iterator[None]:
    """Turn a failure caused by the process's end, met midway, into ESRCH.

    Its container and cgroup vanish as it ends: a call racing that sees their files or
    the runtime's container go, not an internal error.
    """
    try:
        yield
    except SyscallError:
        raise
    except (OSError, AgentOSError):
        if process.ending is None and not process.finishing:  # not ending: a real failure
            raise
        msg = f"process {process.pid} ended during the call"
        raise SyscallNotFoundError(msg, code=ErrorCode.ESRCH) from None


def _write_python_lib(directory: Path) -> None:
    """Put the in-sandbox client module and msgpack, which it needs, in ``directory``."""
    directory.mkdir(mode=0o755)
    shutil.copyfile(Path(agentos_kernel.__file__), directory / "agentos_kernel.py")
    shutil.copytree(Path(msgpack.__file__).parent, directory / "msgpack")
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # whatever the umask


def _no_events(*_args: Any, **_kwargs: Any) -> None:
    pass


class Supervisor:
    """Runs the containers of a process table's processes.

    Args:
        processes: the table whose processes it runs.
        publish: where lifecycle events go.
    """

    def __init__(
        self,
        processes: ProcessTable,
        *,
        publish: Publish | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.processes = processes
        self.publish = publish or _no_events
        self.scheduler = scheduler or Scheduler(processes)
        self.runtime: Runtime | None = None
        self._unavailable = "the kernel is not serving"
        self._nursery: trio.Nursery | None = None
        self._calls: CallTable | None = None
        self._sockets: Path | None = None
        self._max_frame = 0
        self._python: Path | None = None
        self._socket_scopes: dict[int, trio.CancelScope] = {}
        self.app_roots: AppRoots | None = None

    @contextlib.asynccontextmanager
    async def running(
        self,
        calls: CallTable,
        *,
        runtime: Runtime | None,
        unavailable: str = "",
        sockets: Path,
        max_frame_bytes: int,
        app_roots: AppRoots | None = None,
    ) -> AsyncIterator[None]:
        """Run containers for the block; at its end every one of them is ended.

        Containers a previous run left (a kernel killed with ``kill -9``) are removed
        first: their processes died with that kernel's process table.

        Args:
            calls: what the processes' sockets serve.
            runtime: the sandbox runtime, or None if there is none (``unavailable`` says
                why): processes without a command still work.
            unavailable: why there is no runtime.
            sockets: a directory of the kernel's own for the processes' sockets.
            max_frame_bytes: the frame size limit on those sockets.
            app_roots: the apps' own directories, each its containers' /data; without
                them each container gets a private /data of its own.
        """
        if runtime is not None:
            try:
                removed = await runtime.reconcile()
            except Exception:  # what is left keeps its uids reserved; serving matters more
                logger.exception("could not remove every container a previous kernel left")
            else:
                if removed:
                    logger.warning("removed %d container(s) a previous kernel left", len(removed))
        await trio.to_thread.run_sync(functools.partial(shutil.rmtree, sockets, ignore_errors=True))
        await trio.Path(sockets).mkdir(mode=0o755, parents=True)
        self._python = sockets / "python"
        await trio.to_thread.run_sync(_write_python_lib, self._python)
        self.runtime, self._unavailable = runtime, unavailable or "no sandbox runtime"
        self._calls, self._sockets, self._max_frame = calls, sockets, max_frame_bytes
        self.app_roots = app_roots
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    yield
                finally:
                    with trio.move_on_after(_STOP_SECONDS, shield=True):
                        await self._end_all()
                    nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self.runtime = None
            self.app_roots = None
            self._unavailable = "the kernel is not serving"

    async def _end_all(self) -> None:
        """End every process, all at once.

        First the top ones (with their children), then any left: detached ones
        reparented to the kernel meanwhile.
        """
        for top_only in (True, False):
            async with trio.open_nursery() as nursery:
                for process in self.processes.live():
                    if process.state is not ProcessState.EXITED and (
                        process.ppid == 0 or not top_only
                    ):
                        nursery.start_soon(self._end_quietly, process)

    async def _end_quietly(self, process: Process) -> None:
        try:
            await self.end(process, ExitReason.KILLED)
        except Exception:
            logger.exception("could not end pid %d", process.pid)

    # ------------------------------------------------------------------ launching

    async def open_app_root(self, app_id: str, policy: Policy | None) -> AppRoot | None:
        """The app's own directory, opened with its policy's disk quota; None without roots.

        Raises:
            SyscallUnavailableError: EIO, the app's volume could not be made or mounted.
        """
        if self.app_roots is None:
            return None
        quota = policy.limits.disk if policy is not None else None
        try:
            return await self.app_roots.open(app_id, quota=quota)
        except VolumeError as exc:
            msg = f"app {app_id}'s files are not available: {exc}"
            raise SyscallUnavailableError(msg, code=ErrorCode.EIO) from exc

    async def launch(self, process: Process, command: Command, policy: Policy) -> None:
        """Run ``command`` for ``process`` in a new container under ``policy``.

        On failure the process is recorded as exited (``failed``) and the error raised.

        Raises:
            SyscallUnavailableError: EAGAIN, there is no sandbox runtime.
            AgentOSError: the runtime refused (e.g. a policy it cannot honour here).
        """
        process.launching = trio.Event()
        try:
            await self._launch(process, command, policy)
        except BaseException as exc:
            if process.state is not ProcessState.EXITED:
                reason = process.ending or ExitReason.FAILED
                await self._finish(process, reason, ExitStatus(code=None))
            logger.warning("pid %d could not start: %s", process.pid, exc)
            raise
        finally:
            process.launching.set()

    async def _launch(self, process: Process, command: Command, policy: Policy) -> None:
        runtime, nursery, calls, sockets = self.runtime, self._nursery, self._calls, self._sockets
        if runtime is None or nursery is None or calls is None or sockets is None:
            msg = f"cannot run a command: {self._unavailable}"
            raise SyscallUnavailableError(msg, code=ErrorCode.EAGAIN)
        path = sockets / f"{process.pid}.sock"
        listener = await bind_process_socket(path)
        scope = trio.CancelScope()
        self._socket_scopes[process.pid] = scope
        pipes: list[int] = []  # ours until the pumps take them
        try:
            env = {
                "AGENTOS_PID": str(process.pid),
                "AGENTOS_KERNEL_SOCKET": KERNEL_SOCKET,
                **command.env,
            }
            own = command.env.get("PYTHONPATH")
            env["PYTHONPATH"] = f"{own}:{KERNEL_PYTHON}" if own else KERNEL_PYTHON
            spec = ProcessSpec(command.argv, env, command.cwd)
            root = None
            if process.app_id is not None:
                root = await self.open_app_root(process.app_id, policy)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            pipes.extend((out_r, out_w))
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            pipes.extend((err_r, err_w))
            container = await runtime.create(
                spec, policy, stdio=Stdio(stdout=out_w, stderr=err_w), kernel_socket=path,
                python_lib=self._python, data=root.path if root else None,
                groups=(root.gid,) if root else (),
            )  # fmt: skip
            for fd in (out_w, err_w):  # the container holds its own copies now
                os.close(fd)
                pipes.remove(fd)
            process.container = container  # from here on, ending it removes the container
            process.runtime = runtime.name
            process.container_id = container.id
            process.container_uid = container.uid
            _check_not_ending(process)
            os.chown(path, container.uid, container.uid)
        except BaseException:
            for fd in pipes:
                os.close(fd)
            with trio.CancelScope(shield=True):
                await listener.aclose()
            raise
        process.output = output = OutputLog()
        nursery.start_soon(_record, out_r, OutputStream.STDOUT, output)
        nursery.start_soon(_record, err_r, OutputStream.STDERR, output)
        await nursery.start(self._serve_socket, process, listener, scope)  # owns it now
        await container.start()
        _check_not_ending(process)
        nursery.start_soon(self._watch, process, container, policy.limits.timeout)
        await self.scheduler.changed(process)
        logger.info(
            "pid %d %r runs %s in %s (%s, uid %d)",
            process.pid, process.name, command.argv[0], container.id, runtime.name, container.uid,
        )  # fmt: skip

    async def _serve_socket(
        self,
        process: Process,
        listener: trio.SocketListener,
        scope: trio.CancelScope,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        assert self._calls is not None
        uid = process.container_uid

        def caller_of(peer: PeerCredentials) -> Caller | None:
            if peer.uid != uid:
                return None
            return Caller(
                pid=process.pid, uid=peer.uid, os_pid=peer.pid, capabilities=process.capabilities
            )

        with scope:
            try:
                await serve_process_socket(
                    listener, self._calls, caller_of=caller_of, max_frame_bytes=self._max_frame,
                    task_status=task_status,
                )  # fmt: skip
            finally:
                with trio.move_on_after(1, shield=True):
                    await listener.aclose()

    # ------------------------------------------------------------------ ending

    async def _watch(
        self, process: Process, container: Container, time_limit: float | None
    ) -> None:
        """Wait for the container's end and record it; never lets an error out."""
        try:
            await self._watch_until_end(process, container, time_limit)
        except Exception:
            logger.exception("watching pid %d failed; ending it", process.pid)
            if process.ending is None:
                process.ending = ExitReason.FAILED
            with contextlib.suppress(Exception), trio.move_on_after(_STOP_SECONDS):
                await container.kill()
            await self._finish(process, process.ending, ExitStatus(code=None))

    async def _watch_until_end(
        self, process: Process, container: Container, time_limit: float | None
    ) -> None:
        status: ExitStatus | None = None
        seen = [0, 0]  # pids refusals and OOM kills published so far
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_limits, process, container, seen)
            with trio.move_on_after(time_limit if time_limit is not None else math.inf):
                status = await container.wait()
            nursery.cancel_scope.cancel()
        await self._check_limits(process, container, seen)  # what came in its last moments
        if status is None:
            if process.ending is None:
                process.ending = ExitReason.TIMEOUT
                logger.info("pid %d passed its %s s time limit", process.pid, time_limit)
            with trio.CancelScope(shield=True):
                await container.kill()
                status = await container.wait()
        reason = process.ending
        if reason is None:
            oom = False
            if status is not None and status.signal == signal.SIGKILL:  # the OOM killer's
                with contextlib.suppress(Exception):  # a cgroup already gone tells nothing
                    oom = (await container.stats()).oom_kills > 0
            reason = ExitReason.OOM if oom else ExitReason.EXITED
        await self._finish(process, reason, status or ExitStatus(code=None))

    async def _watch_limits(self, process: Process, container: Container, seen: list[int]) -> None:
        """Publish ``limit.reached`` while it runs, each time its cgroup counts more."""
        while True:
            await trio.sleep(_LIMIT_POLL_SECONDS)
            if not await self._check_limits(process, container, seen):
                return

    async def _check_limits(self, process: Process, container: Container, seen: list[int]) -> bool:
        """Publish what the cgroup refused since ``seen`` (pids refusals, OOM kills).

        Returns:
            False once the counters cannot be read any more (the container is gone).
        """
        try:
            stats = await container.stats()
        except Exception:  # noqa: BLE001 - gone with its container: nothing more to tell
            return False
        for index, (limit, count) in enumerate(
            (("pids", stats.pids_limit_hits), ("memory", stats.oom_kills))
        ):
            if count > seen[index]:
                seen[index] = count
                self.publish(EventKind.LIMIT_REACHED, pid=process.pid, limit=limit, count=count)
        return True

    async def end(self, process: Process, reason: ExitReason) -> None:
        """End ``process`` (and its children that are not detached); return once it has."""
        if process.state is ProcessState.EXITED:
            return
        if process.ending is None:
            process.ending = reason
        if process.launching is not None and not process.launching.is_set():
            # Its launch sees ``ending`` at its next step and ends it; wait for that.
            with trio.CancelScope(shield=True), trio.move_on_after(_STOP_SECONDS):
                await process.launching.wait()
            if process.ended.is_set():
                return
        container = process.container
        if container is None:  # nothing runs: it ends as a killed process would
            await self._finish(process, process.ending, ExitStatus(signal=signal.SIGKILL))
            return
        with trio.CancelScope(shield=True), trio.move_on_after(_STOP_SECONDS):
            async with process.freezer:
                if process.state is ProcessState.SUSPENDED:  # a frozen cgroup holds SIGKILL
                    with contextlib.suppress(Exception):
                        await trio.to_thread.run_sync(container.cgroup.thaw)
                await container.kill()
            # Not left to the watcher: it is cancelled when the kernel stops.
            status = await container.wait()
            await self._finish(process, process.ending, status)

    async def _finish(self, process: Process, reason: ExitReason, status: ExitStatus) -> None:
        """Record the end: children first, then the socket, the container, the entry."""
        if process.finishing:  # the watcher and a kill may both get here
            await process.ended.wait()
            return
        process.finishing = True
        with trio.CancelScope(shield=True):  # once begun, an end is always recorded
            await self._record_end(process, reason, status)

    async def _record_end(self, process: Process, reason: ExitReason, status: ExitStatus) -> None:
        for child in self._doomed_children(process):
            try:
                await self.end(child, ExitReason.KILLED)
            except Exception:
                logger.exception("could not end pid %d with its parent", child.pid)
        if scope := self._socket_scopes.pop(process.pid, None):
            scope.cancel()
        if self._sockets is not None:
            (self._sockets / f"{process.pid}.sock").unlink(missing_ok=True)
        container = process.container
        if container is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(_STOP_SECONDS):
                try:
                    await container.delete()
                except Exception:
                    logger.exception("could not remove the container of pid %d", process.pid)
        self.processes.mark_exited(
            process, reason=reason, exit_code=status.code, term_signal=status.signal
        )
        try:
            await self.scheduler.ended(process.pid)
        except Exception:
            logger.exception("re-sharing the CPUs after pid %d failed", process.pid)
        kind = {
            ExitReason.KILLED: EventKind.PROCESS_KILLED,
            ExitReason.OOM: EventKind.PROCESS_OOM,
            ExitReason.TIMEOUT: EventKind.PROCESS_TIMEOUT,
        }.get(reason, EventKind.PROCESS_EXITED)
        self.publish(
            kind, pid=process.pid, reason=reason.value, exit_code=status.code,
            term_signal=status.signal,
        )  # fmt: skip
        logger.info(
            "pid %d ended (%s, code %s, signal %s)",
            process.pid, reason.value, status.code, status.signal,
        )  # fmt: skip

    def _doomed_children(self, process: Process) -> list[Process]:
        """Live children that end with ``process``: all but the detached ones."""
        children = []
        for pid in sorted(process.children):
            with contextlib.suppress(Exception):
                child = self.processes.get(pid)
                if not child.detached:
                    children.append(child)
        return children

    # ------------------------------------------------------------------ the calls

    def _container(self, process: Process) -> Container:
        if process.container is None or process.state is ProcessState.EXITED:
            msg = f"process {process.pid} has no running container"
            raise SyscallPreconditionError(msg)
        return process.container

    async def stats(self, process: Process) -> CgroupStats | None:
        """Its container's counters, or None for a process without one."""
        if process.container is None:
            return None
        with _while_alive(process):
            return await process.container.stats()

    async def suspend(self, process: Process) -> None:
        """Freeze its container (a process without one only changes state)."""
        async with process.freezer:
            process.move(ProcessState.SUSPENDED)
            if process.container is not None:
                try:
                    with _while_alive(process):
                        await trio.to_thread.run_sync(process.container.cgroup.freeze)
                except BaseException:
                    if process.state is ProcessState.SUSPENDED:
                        process.move(ProcessState.RUNNING)
                    raise
        self.publish(EventKind.PROCESS_SUSPENDED, pid=process.pid)

    async def resume(self, process: Process) -> None:
        """Thaw its container."""
        async with process.freezer:
            if process.state is not ProcessState.SUSPENDED:
                msg = f"process {process.pid} is {process.state}, not suspended"
                raise SyscallPreconditionError(msg)
            if process.container is not None:
                with _while_alive(process):
                    await trio.to_thread.run_sync(process.container.cgroup.thaw)
            process.move(ProcessState.RUNNING)
        self.publish(EventKind.PROCESS_RESUMED, pid=process.pid)

    async def set_priority(self, process: Process, priority: int) -> None:
        """Record ``priority``; its container's weight follows as the policy says."""
        process.priority = priority
        with _while_alive(process):
            await self.scheduler.changed(process)

    async def signal(self, process: Process, signum: int) -> None:
        """Send ``signum`` to its command.

        The three signals no handler can see act on the whole container, as they would
        on a process outside one, rather than on its init alone: SIGSTOP freezes it
        (:meth:`suspend`), SIGCONT thaws a frozen one, SIGKILL ends it (``killed``).
        """
        container = self._container(process)
        if signum == signal.SIGSTOP:
            await self.suspend(process)
        elif signum == signal.SIGCONT and process.state is ProcessState.SUSPENDED:
            await self.resume(process)
        elif signum == signal.SIGKILL:
            await self.end(process, ExitReason.KILLED)
        else:
            with _while_alive(process):
                await container.signal(signum)

    async def exec(
        self,
        process: Process,
        command: Command,
        *,
        stdin: bytes,
        time_limit: float | None,
        emit: Callable[[ExecItem], Awaitable[None]],
    ) -> ExecResult:
        """Run ``command`` in the process's container, streaming its output to ``emit``.

        Output past the policy's output cap is dropped (the command still runs to its end).
        """
        container = self._container(process)
        if process.state is ProcessState.SUSPENDED:
            msg = f"process {process.pid} is suspended"
            raise SyscallPreconditionError(msg, code=ErrorCode.EBUSY)
        cap = process.policy.limits.output if process.policy is not None else 16 << 20
        budget = _OutputBudget(cap)
        spec = ProcessSpec(command.argv, command.env, command.cwd)
        out_r = out_w = err_r = err_w = in_r = in_w = -1
        status: ExitStatus | None = None
        failure: OSError | AgentOSError | None = None  # raised past the nursery, not in a group
        try:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, out_r, OutputStream.STDOUT, emit, budget)
                nursery.start_soon(_pump, err_r, OutputStream.STDERR, emit, budget)
                out_r = err_r = -1  # the pumps own them now
                nursery.start_soon(_feed, in_w, stdin)
                in_w = -1
                stdio = Stdio(stdin=in_r, stdout=out_w, stderr=err_w)
                try:
                    with trio.move_on_after(time_limit if time_limit is not None else math.inf):
                        status = await container.exec(spec, stdio)
                except (OSError, AgentOSError) as exc:
                    failure = exc
                for fd in (out_w, err_w):
                    os.close(fd)
                out_w = err_w = -1
                # A background child may keep the pipes open: the output drains for a
                # moment, then whatever it writes later is not this call's.
                nursery.cancel_scope.deadline = trio.current_time() + _DRAIN_SECONDS
        finally:
            for fd in (out_r, out_w, err_r, err_w, in_r, in_w):
                if fd >= 0:
                    os.close(fd)
        if failure is not None:
            with _while_alive(process):
                raise failure
        if status is None:
            return ExecResult(
                exit_code=None, term_signal=None, timed_out=True, dropped_bytes=budget.dropped
            )
        return ExecResult(
            exit_code=status.code, term_signal=status.signal, timed_out=False,
            dropped_bytes=budget.dropped,
        )  # fmt: skip


class _OutputBudget:
    """What an exec may still stream (both outputs together), and what it dropped."""

    def __init__(self, cap: int) -> None:
        self.left = cap
        self.dropped = 0

    def take(self, chunk: bytes) -> bytes:
        keep = chunk[: max(0, self.left)]
        self.left -= len(keep)
        self.dropped += len(chunk) - len(keep)
        return keep


async def _pump(
    fd: int,
    stream: OutputStream,
    emit: Callable[[ExecItem], Awaitable[None]],
    budget: _OutputBudget,
) -> None:
    async with trio.lowlevel.FdStream(fd) as source:
        while chunk := await source.receive_some(_CHUNK):
            if keep := budget.take(chunk):
                await emit(ExecItem(stream=stream, data=keep))


async def _record(fd: int, stream: OutputStream, output: OutputLog) -> None:
    """Keep a container's output stream in its process's log until it ends."""
    try:
        async with trio.lowlevel.FdStream(fd) as source:
            while chunk := await source.receive_some(_CHUNK):
                output.append(stream, chunk)
    finally:
        output.close(stream)


async def _feed(fd: int, data: bytes) -> None:
    async with trio.lowlevel.FdStream(fd) as sink:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            if data:
                await sink.send_all(data)
