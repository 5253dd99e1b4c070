"""Containers through a Docker Engine (docker SDK), hardened as the OCI ones are.

The same hardening, in Docker's terms: the sandbox's own uid:gid, every capability
dropped, no-new-privileges, our seccomp profile, a read-only root, network none, the same
tini as PID 1 as under runc, private ipc and cgroup namespaces, the limits as HostConfig, the
host's /usr bound read-only, the sandbox's /etc files and /data bound in. Docker keeps
its default masked /proc paths and device list, which match ours.

Docker takes no file descriptors for a container's stdio, so the runtime attaches before
starting and copies the demultiplexed streams into the caller's descriptors in a thread.
The SDK is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import socket
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import trio
import urllib3.exceptions
from docker.types import Mount, Ulimit
from docker.utils.socket import STDERR, STDOUT, frames_iter

from sandbox.cgroups import (
    CPU_PERIOD_US,
    Cgroup,
    CgroupError,
    CgroupManager,
    CgroupMode,
    CgroupStats,
    Resources,
)
from sandbox.errors import FailedPreconditionError
from sandbox.oci.rootfs import HostLayout
from sandbox.oci.seccomp import sandbox_seccomp
from sandbox.oci.spec import (
    KERNEL_PYTHON,
    KERNEL_SOCKET,
    LAUNCH_DIR,
    SANDBOX_HOSTNAME,
    SANDBOX_INIT,
    ProcessSpec,
    sandbox_environment,
)
from sandbox.policy import Policy
from sandbox.runtime._base import Bundle, Container, Runtime
from sandbox.runtime._cgroup_lock import (
    creating_cgroups,
    remove_parent_if_idle,
    remove_stale_children,
)
from sandbox.runtime._docker_image import BASE_IMAGE, base_image_tar
from sandbox.runtime._oci_cli import Stdio
from sandbox.runtime._types import (
    ContainerState,
    ExitStatus,
    RuntimeFailedError,
    RuntimeUnavailableError,
)
from sandbox.runtime._uids import UidAllocator

__all__ = ["DockerContainer", "DockerRuntime"]

logger = logging.getLogger("agentos.sandbox.runtime")

LABEL = "agentos.sandbox"
_NO_STATS = CgroupStats(
    memory_current=0, memory_peak=None, oom_kills=0, pids_current=0, pids_peak=None,
    pids_limit_hits=0, cpu_usage_us=0, cpu_periods=0, cpu_throttled_periods=0,
    cpu_throttled_us=0,
)  # fmt: skip
_ETC_FILES = ("passwd", "group", "nsswitch.conf")
_STOP_SECONDS = 10.0  # for ending a cancelled exec's process


def _timed_out(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether a request failed only because its read timeout passed.

    The SDK's wait reports its timeout as a ConnectionError wrapping urllib3's
    ReadTimeoutError; a dead engine's refusal is a ConnectionError too, but not that.
    """
    return isinstance(exc, requests.exceptions.ReadTimeout) or any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args
    )


def _in_cgroup(pid: int, cgroup: Cgroup) -> bool:
    """Whether ``pid`` (still) lives in ``cgroup``: a recycled pid does not."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return False
    return any(line.split(":", 2)[2] == f"/{cgroup.name}" for line in lines)


def _env(process: ProcessSpec, home: str) -> list[str]:
    return [f"{k}={v}" for k, v in sandbox_environment(process, home=home).items()]


class DockerRuntime(Runtime):
    """Sandboxes as containers of a Docker Engine.

    Args:
        client: the engine to use.
        state_dir: where bundles (the /etc files, /data) and uid reservations live.
    """

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient,
        state_dir: Path,
        *,
        cgroups: CgroupManager | None = None,
        host: HostLayout | None = None,
        uids: UidAllocator | None = None,
    ) -> None:
        super().__init__(
            state_dir,
            bundles="docker",
            cgroup_parent="agentos-docker",
            cgroups=cgroups,
            host=host,
            uids=uids,
        )
        self.client = client
        self._image_ready = False

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self.client.close)

    async def describe(self) -> str:
        version = await trio.to_thread.run_sync(self.client.version)
        return f"docker {version.get('Version', '?')} ({self.cgroups.layout.describe()})"

    async def list_ids(self) -> list[str]:
        found = await trio.to_thread.run_sync(
            lambda: self.client.containers.list(all=True, filters={"label": LABEL})
        )
        return sorted(c.labels[LABEL] for c in found)

    async def reconcile(self, *, keep: Collection[str] = ()) -> list[str]:
        removed = await super().reconcile(keep=keep)

        def drop_stale_cgroups() -> None:
            # A container's cgroup is named by its engine id; an engine that died with
            # its containers (or a fresh one on a new data root) no longer knows them.
            live = {c.id for c in self.client.containers.list(all=True)}
            for name in remove_stale_children(self.cgroups, self.cgroup_parent, live):
                logger.warning("removed the stale cgroup %s", name)
            remove_parent_if_idle(self.cgroups, self.cgroup_parent)

        await trio.to_thread.run_sync(drop_stale_cgroups)
        return removed

    async def _ensure_image(self) -> None:
        if self._image_ready:
            return

        def ensure() -> None:
            try:
                self.client.images.get(BASE_IMAGE)
            except docker.errors.ImageNotFound:
                repository, tag = BASE_IMAGE.split(":")
                self.client.api.import_image_from_data(
                    base_image_tar(self.host), repository=repository, tag=tag
                )
                logger.info("built the sandbox base image %s from local files", BASE_IMAGE)

        await trio.to_thread.run_sync(ensure)
        self._image_ready = True

    async def _create(
        self, bundle: Bundle, process: ProcessSpec, policy: Policy, stdio: Stdio
    ) -> DockerContainer:
        await self._ensure_image()
        options = self._options(bundle, process, policy, stdio)
        container = DockerContainer(self, bundle.id, bundle.uid)
        if self.cgroups.mode is CgroupMode.V2:
            container.memory_high = policy.limits.memory_high
        try:
            handle = await trio.to_thread.run_sync(lambda: self.client.containers.create(**options))
            container.bind(handle, stdio)
        except docker.errors.APIError as exc:
            raise RuntimeFailedError(f"docker create failed: {exc.explanation or exc}") from exc
        return container

    def _options(
        self, bundle: Bundle, process: ProcessSpec, policy: Policy, stdio: Stdio
    ) -> dict[str, Any]:
        limits = policy.limits
        uid = bundle.uid
        etc = bundle.rootfs / "etc"  # only its /etc is used: the files bound in below
        mounts = [Mount("/usr", os.fspath(self.host.root / "usr"), type="bind", read_only=True)]
        mounts += [
            Mount(f"/{name}", os.fspath(self.host.root / name), type="bind", read_only=True)
            for name in (*self.host.dirs, *self.host.files)
        ]
        mounts += [
            Mount(f"/etc/{name}", os.fspath(etc / name), type="bind", read_only=True)
            for name in _ETC_FILES
        ]
        mounts.append(Mount("/data", os.fspath(bundle.data), type="bind", read_only=False))
        mounts += [
            Mount(str(m.destination), str(m.source), type="bind", read_only=True)
            for m in policy.mounts
        ]
        if bundle.launch is not None:
            mounts.append(Mount(LAUNCH_DIR, os.fspath(bundle.launch), type="bind", read_only=True))
        if bundle.kernel_socket is not None:
            source = os.fspath(bundle.kernel_socket)
            mounts.append(Mount(KERNEL_SOCKET, source, type="bind", read_only=True))
        if bundle.python_lib is not None:
            source = os.fspath(bundle.python_lib)
            mounts.append(Mount(KERNEL_PYTHON, source, type="bind", read_only=True))
        tmpfs = f"rw,nosuid,nodev,size={limits.tmpfs},mode=1777,uid={uid},gid={uid}"
        options: dict[str, Any] = {
            "image": BASE_IMAGE,
            "command": [SANDBOX_INIT, "--", *process.argv],  # the same init as under runc
            "name": bundle.id,
            "labels": {LABEL: bundle.id},
            "user": f"{uid}:{uid}",
            "group_add": [str(gid) for gid in bundle.groups],
            "working_dir": process.cwd or "/data",
            "environment": _env(process, "/data"),
            "hostname": SANDBOX_HOSTNAME,
            "network_mode": "none",
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true", "seccomp=" + json.dumps(sandbox_seccomp())],
            "ipc_mode": "private",
            "cgroupns": "private",
            "cgroup_parent": f"/{self.cgroup_parent}",
            "mem_limit": limits.memory,
            "memswap_limit": limits.memory,  # no swap
            "cpu_period": CPU_PERIOD_US,
            "cpu_quota": Resources(cpu_max=limits.cpus).cpu_quota_us,
            "pids_limit": limits.pids,
            "ulimits": [
                Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                Ulimit(name="core", soft=0, hard=0),
            ],
            "tmpfs": {"/tmp": tmpfs},  # noqa: S108 - inside the sandbox
            "shm_size": min(64 << 20, limits.tmpfs),
            "mounts": mounts,
            "oom_score_adj": 500,
            "stdin_open": stdio.stdin is not None,
        }
        if limits.memory_high is not None and self.cgroups.mode is not CgroupMode.V2:
            # v1's soft limit; on v2 Docker would make it memory.low (see start()).
            options["mem_reservation"] = limits.memory_high
        return options

    async def _discard(self, sandbox_id: str) -> None:
        def remove_container() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.containers.get(sandbox_id).remove(force=True)

        await trio.to_thread.run_sync(remove_container)
        await trio.to_thread.run_sync(remove_parent_if_idle, self.cgroups, self.cgroup_parent)


class _Streams:
    """Copies between a container's attached streams and the caller's descriptors.

    The output ends when the process does; the input copy is woken then (or by
    :meth:`close`) even if the caller's stdin never ends.
    """

    def __init__(self, connection: Any, stdio: Stdio) -> None:
        self._socket = connection
        self._out = os.dup(stdio.stdout) if stdio.stdout is not None else None
        self._err = os.dup(stdio.stderr) if stdio.stderr is not None else None
        self._in = os.dup(stdio.stdin) if stdio.stdin is not None else None
        self._lock = threading.Lock()
        self._closed = False
        self._wake: tuple[int, int] | None = None
        self._output = threading.Thread(target=self._copy_out, daemon=True)
        self._input = None
        if self._in is not None:
            self._wake = os.pipe2(os.O_CLOEXEC)
            self._input = threading.Thread(target=self._copy_in, daemon=True)

    def start(self) -> None:
        self._output.start()
        if self._input is not None:
            self._input.start()

    def _copy_out(self) -> None:
        try:
            for stream, data in frames_iter(self._socket, tty=False):
                fd = self._out if stream == STDOUT else self._err if stream == STDERR else None
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.write(fd, data)
        except (OSError, ValueError):  # ValueError: closed by close() meanwhile
            pass
        finally:
            for fd in (self._out, self._err):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.close()

    def close(self) -> None:
        """End both copies and close the connection for good.

        The SDK's wrapper alone would leave the socket open.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._wake is not None:
                os.write(self._wake[1], b"\0")
        raw = getattr(self._socket, "_sock", None)
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)  # wakes a copy blocked on it
        with contextlib.suppress(OSError):
            self._socket.close()
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.close()

    def join_output(self) -> None:
        """Wait until the output has been copied: the process has ended."""
        self._output.join()

    def _copy_in(self) -> None:
        assert self._in is not None
        assert self._wake is not None
        raw = self._socket._sock  # noqa: SLF001 - the SDK's SocketIO wraps the real socket
        poller = select.poll()
        poller.register(self._in, select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake[0] in ready:
                    break
                chunk = os.read(self._in, 65536)
                if not chunk:
                    raw.shutdown(socket.SHUT_WR)  # EOF on the container's stdin
                    break
                raw.sendall(chunk)
        except OSError:
            pass
        finally:
            os.close(self._in)
            with self._lock:
                os.close(self._wake[0])
                os.close(self._wake[1])
                self._wake = None


class DockerContainer(Container):
    """A container made by :class:`DockerRuntime`."""

    def __init__(self, runtime: DockerRuntime, sandbox_id: str, uid: int) -> None:
        self._runtime = runtime
        self.id = sandbox_id
        self.uid = uid
        self.pid = 0
        self.state = ContainerState.CREATED
        self._handle: Any = None
        self._streams: _Streams | None = None
        self._exit: ExitStatus | None = None
        self._waiting = trio.Lock()
        self._last_stats: CgroupStats | None = None
        self._oom_killed = False
        self.memory_high: int | None = None  # set on the cgroup at start (v2)
        self._cgroup_name = f"{runtime.cgroup_parent}/{sandbox_id}"

    def bind(self, handle: Any, stdio: Stdio) -> None:
        """Attach to a freshly created Docker container (before it starts)."""
        self._handle = handle
        self._cgroup_name = f"{self._runtime.cgroup_parent}/{handle.id}"
        params = {
            "stdout": 1,
            "stderr": 1,
            "stream": 1,
            "stdin": 1 if stdio.stdin is not None else 0,
        }
        attached = self._runtime.client.api.attach_socket(handle.id, params=params)
        self._streams = _Streams(attached, stdio)
        self._streams.start()

    @property
    def cgroup(self) -> Cgroup:
        return self._runtime.cgroups.cgroup(self._cgroup_name)

    async def start(self) -> None:
        self.state.check(ContainerState.RUNNING)
        try:
            async with creating_cgroups():  # docker makes the cgroup at start
                await trio.to_thread.run_sync(self._handle.start)
            await trio.to_thread.run_sync(self._handle.reload)
        except docker.errors.APIError as exc:
            raise RuntimeFailedError(f"docker start failed: {exc.explanation or exc}") from exc
        self.pid = int(self._handle.attrs["State"]["Pid"])
        self.state = ContainerState.RUNNING
        if self.memory_high is not None:
            # Docker has no option for memory.high; it is written as soon as the cgroup is.
            resources = Resources(memory_high=self.memory_high)
            try:
                await trio.to_thread.run_sync(self.cgroup.apply, resources)
            except CgroupError:
                if self.cgroup.exists():
                    raise
                # else the command already ended and Docker removed its cgroup

    async def wait(self) -> ExitStatus:
        async with self._waiting:
            if self._exit is None:
                if self.state is ContainerState.CREATED:
                    msg = f"sandbox {self.id} has not been started"
                    raise FailedPreconditionError(msg)
                result = await self._wait_for_engine()
                await trio.to_thread.run_sync(self._handle.reload)
                self._oom_killed = bool(self._handle.attrs["State"].get("OOMKilled"))
                self._exit = ExitStatus.from_init(ExitStatus(code=int(result["StatusCode"])))
                self.state = ContainerState.STOPPED
        return self._exit

    async def _wait_for_engine(self) -> dict[str, Any]:
        """Docker's wait, a second at a time, so that cancellation never strands a thread."""
        while True:
            try:
                result: dict[str, Any] = await trio.to_thread.run_sync(
                    lambda: self._handle.wait(timeout=1)
                )
            except requests.exceptions.ConnectionError as exc:
                if _timed_out(exc):  # the second passed: ask again
                    continue
                msg = f"the Docker Engine went away while waiting for {self.id}: {exc}"
                raise RuntimeUnavailableError(msg) from exc
            return result

    async def signal(self, signum: int) -> None:
        if self._exit is None and self.state is ContainerState.RUNNING:
            with contextlib.suppress(docker.errors.APIError):
                await trio.to_thread.run_sync(lambda: self._handle.kill(signal=signum))

    async def kill(self) -> None:
        if self.state is ContainerState.DELETED or self._handle is None:
            return
        with contextlib.suppress(docker.errors.APIError):
            await trio.to_thread.run_sync(lambda: self._handle.kill(signal="SIGKILL"))

    async def stats(self) -> CgroupStats:
        """Live counters; once stopped, the last ones read.

        Docker removes a container's cgroup as soon as it stops, so the final counters
        are the last ones read while it ran (none, for a command that ended before the
        first read), with Docker's own OOMKilled flag for a kill at the very end.
        """
        try:
            stats = await trio.to_thread.run_sync(self.cgroup.stats)
        except FileNotFoundError:
            if self.state is ContainerState.RUNNING:
                raise
            last = self._last_stats or _NO_STATS
            return dataclasses.replace(
                last,
                memory_current=0,
                pids_current=0,
                oom_kills=max(last.oom_kills, 1 if self._oom_killed else 0),
            )
        self._last_stats = stats
        return stats

    async def exec(self, process: ProcessSpec, stdio: Stdio) -> ExitStatus:
        if self.state is not ContainerState.RUNNING:
            msg = f"sandbox {self.id} is {self.state.value}, not running"
            raise FailedPreconditionError(msg)
        api = self._runtime.client.api

        def begin() -> tuple[str, _Streams]:
            created = api.exec_create(
                self._handle.id, list(process.argv), user=f"{self.uid}:{self.uid}",
                workdir=process.cwd or "/data", environment=_env(process, "/data"),
                stdin=stdio.stdin is not None,
            )  # fmt: skip
            streams = _Streams(api.exec_start(created["Id"], socket=True), stdio)
            streams.start()
            return created["Id"], streams

        exec_id, streams = await trio.to_thread.run_sync(begin)
        try:
            await trio.to_thread.run_sync(streams.join_output, abandon_on_cancel=True)
        except trio.Cancelled:
            with trio.CancelScope(shield=True), trio.move_on_after(_STOP_SECONDS):
                await trio.to_thread.run_sync(self._end_exec, exec_id)
            raise
        finally:
            streams.close()
        info = await trio.to_thread.run_sync(api.exec_inspect, exec_id)
        return ExitStatus(code=int(info["ExitCode"]))

    def _end_exec(self, exec_id: str) -> None:
        """Kill a process started by exec, and all it started (Docker has no call for it)."""
        info = self._runtime.client.api.exec_inspect(exec_id)
        pid = int(info.get("Pid") or 0)
        if info.get("Running") and pid > 0 and _in_cgroup(pid, self.cgroup):
            self.cgroup.kill_tree(pid)

    async def delete(self) -> None:
        if self.state is ContainerState.DELETED:
            return
        await self._runtime._remove(self.id, uid=self.uid)  # noqa: SLF001 - its runtime's
        self.state = ContainerState.DELETED
