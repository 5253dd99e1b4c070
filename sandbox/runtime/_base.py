"""The interface every container runtime implements (runc and crun, Docker)."""

from __future__ import annotations

import abc
import dataclasses
import logging
import secrets
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path

import trio

from sandbox.cgroups import Cgroup, CgroupManager, CgroupStats
from sandbox.errors import (
    AgentOSError,
    FailedPreconditionError,
    InvalidArgumentError,
    UnsupportedError,
)
from sandbox.oci.rootfs import HostLayout, build_rootfs
from sandbox.oci.spec import SANDBOX_HOSTNAME, ProcessSpec
from sandbox.policy import NetworkMode, Policy
from sandbox.runtime._cgroup_lock import remove_parent_if_idle
from sandbox.runtime._oci_cli import Stdio
from sandbox.runtime._types import ContainerState, ExitStatus, RuntimeFailedError
from sandbox.runtime._uids import UidAllocator
from sandbox.runtime._volumes import make_data_volume, remove_data_volume

__all__ = ["Bundle", "Container", "Runtime", "check_admissible", "new_sandbox_id"]

logger = logging.getLogger("agentos.sandbox.runtime")

_CLEANUP_SECONDS = 30.0


async def check_admissible(policy: Policy) -> None:
    """Refuse, before anything is made, a policy no runtime can honour here yet.

    Raises:
        UnsupportedError: a network mode other than ``none`` (until sandbox networking).
        FailedPreconditionError: a host path the policy mounts does not exist.
    """
    if policy.network.mode is not NetworkMode.NONE:
        msg = (
            f"network mode {policy.network.mode.value!r} is not available yet: "
            "sandboxes have no network beyond loopback (mode 'none')"
        )
        raise UnsupportedError(msg)
    for mount in policy.mounts:
        if not await trio.Path(mount.source).exists():
            msg = f"policy {policy.name!r} mounts {mount.source}, which does not exist"
            raise FailedPreconditionError(msg)


_FIRST_ORDINARY_GID = 1000
_NOGROUP = 65534
_MAX_ID = 2**32 - 2


def _ordinary_groups(groups: Sequence[int]) -> tuple[int, ...]:
    """``groups`` as a tuple, if every one is an ordinary group: not root's, nor a system one.

    Raises:
        InvalidArgumentError: one is not.
    """
    for gid in groups:
        if not _FIRST_ORDINARY_GID <= gid <= _MAX_ID or gid == _NOGROUP:
            msg = f"supplementary group {gid} is not an ordinary group (>= 1000, not nogroup)"
            raise InvalidArgumentError(msg)
    return tuple(dict.fromkeys(groups))


def new_sandbox_id() -> str:
    """A fresh sandbox id: ``sb-`` and 12 hex digits."""
    return f"sb-{secrets.token_hex(6)}"


class Container(abc.ABC):
    """One sandboxed container, from creation to deletion.

    Attributes:
        id: the sandbox id, also the container's name.
        uid: the sandbox's own uid (its gid is the same number).
        pid: the host pid of the container's init, once created.
        state: where it is in created -> running -> stopped -> deleted.
    """

    id: str
    uid: int
    pid: int
    state: ContainerState

    @property
    @abc.abstractmethod
    def cgroup(self) -> Cgroup:
        """The container's cgroup (valid until :meth:`delete`)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Run the command (created -> running)."""

    @abc.abstractmethod
    async def wait(self) -> ExitStatus:
        """Wait for the command to end (-> stopped) and return how it ended."""

    @abc.abstractmethod
    async def signal(self, signum: int) -> None:
        """Send a signal to the command (the container's init)."""

    @abc.abstractmethod
    async def kill(self) -> None:
        """SIGKILL every process of the container."""

    @abc.abstractmethod
    async def stats(self) -> CgroupStats:
        """The container's resource counters (valid until :meth:`delete`)."""

    @abc.abstractmethod
    async def exec(self, process: ProcessSpec, stdio: Stdio) -> ExitStatus:
        """Run another process inside the running container and wait for it."""

    @abc.abstractmethod
    async def delete(self) -> None:
        """Kill what is left and release everything: cgroup, volume, uid, files."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    """What :meth:`Runtime.create` has made for a sandbox when the engine's part begins.

    Attributes:
        id: the sandbox id.
        uid: its own uid (and gid), reserved.
        path: its directory under :attr:`Runtime.bundles`, removed with it.
        rootfs: its root directory, with its own /etc (``path/rootfs``).
        data: the host directory to show at /data.
        launch: a host directory to show read-only at ``LAUNCH_DIR``, if any.
        kernel_socket: a Unix socket to show at ``KERNEL_SOCKET``, if any.
        python_lib: a directory to show read-only at ``KERNEL_PYTHON``, if any.
        groups: supplementary groups of its processes (the group sharing its /data).
    """

    id: str
    uid: int
    path: Path
    rootfs: Path
    data: Path
    launch: Path | None
    kernel_socket: Path | None = None
    python_lib: Path | None = None
    groups: tuple[int, ...] = ()


class Runtime(abc.ABC):
    """Makes containers under one state directory; reconciles them after a restart.

    The steps every engine shares live here: admission, the sandbox's uid, its bundle
    directory with rootfs and /data volume, undoing all of it when creation fails, and
    finding and removing orphans. An engine adds its own part of creating
    (:meth:`_create`) and of removing (:meth:`_discard`) a container.

    Args:
        state_dir: where bundles, volumes and uid reservations live.
        bundles: the name of this runtime's bundle directory in ``state_dir``.
        cgroup_parent: the cgroup its containers' cgroups are made in.
        cgroups: the host's cgroups (detected by default).
        host: the host files sandboxes see (detected by default).
        uids: the uid reservations (``state_dir/uids`` by default, shared by runtimes).

    Attributes:
        name: runc, crun or docker.
    """

    name: str

    def __init__(
        self,
        state_dir: Path,
        *,
        bundles: str,
        cgroup_parent: str,
        cgroups: CgroupManager | None = None,
        host: HostLayout | None = None,
        uids: UidAllocator | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.bundles = state_dir / bundles
        self.cgroup_parent = cgroup_parent
        self.cgroups = cgroups or CgroupManager()
        self.host = host or HostLayout.detect()
        self.uids = uids or UidAllocator(state_dir / "uids")

    def cgroup_of(self, sandbox_id: str) -> str:
        """A sandbox's cgroup, below every hierarchy's root."""
        return f"{self.cgroup_parent}/{sandbox_id}"

    def owner(self, sandbox_id: str) -> str:
        """How this runtime names a sandbox in the shared uid reservations."""
        return f"{self.name}:{sandbox_id}"

    def owned(self) -> dict[int, str]:
        """This runtime's uid reservations: uid -> sandbox id."""
        mine = {}
        for uid, owner in self.uids.reserved().items():
            name, _, sandbox_id = owner.partition(":")
            if name == self.name:
                mine[uid] = sandbox_id
        return mine

    @abc.abstractmethod
    async def list_ids(self) -> list[str]:
        """The ids of the containers this runtime holds now."""

    async def aclose(self) -> None:  # noqa: B027 - most runtimes hold nothing to release
        """Release what the runtime holds (a connection to its engine); its containers stay."""

    @abc.abstractmethod
    async def describe(self) -> str:
        """The runtime and its version, for logs."""

    async def create(
        self,
        process: ProcessSpec,
        policy: Policy,
        *,
        stdio: Stdio,
        data: Path | None = None,
        groups: Sequence[int] = (),
        launch_dir: Path | None = None,
        kernel_socket: Path | None = None,
        python_lib: Path | None = None,
    ) -> Container:
        """Create (not start) a container; on any failure, leave nothing of it behind.

        Args:
            process: what it will run.
            policy: its limits, mounts and network.
            stdio: its standard streams.
            data: a host directory to show at /data; by default a fresh private one,
                with the policy's disk quota.
            groups: supplementary groups for its processes: ordinary groups (>= 1000),
                such as the one a shared ``data`` directory belongs to.
            launch_dir: a host directory to show read-only at ``LAUNCH_DIR`` (how a
                pooled sandbox learns its command after creation).
            kernel_socket: a Unix socket on the host to show at ``KERNEL_SOCKET`` (the
                kernel's socket for this one process).
            python_lib: a host directory to show read-only at ``KERNEL_PYTHON`` (the
                kernel's client module).

        Raises:
            UnsupportedError: the policy asks for what this runtime cannot do yet.
            InvalidArgumentError: a supplementary group is root's or a system group.
            FailedPreconditionError: a host path the policy mounts does not exist.
            RuntimeFailedError: the runtime refused.
        """
        await check_admissible(policy)
        groups = _ordinary_groups(groups)
        sandbox_id = new_sandbox_id()
        self.bundles.mkdir(mode=0o700, parents=True, exist_ok=True)
        uid = self.uids.reserve(self.owner(sandbox_id))
        path = self.bundles / sandbox_id
        try:
            path.mkdir(mode=0o700)  # claims the id: from here on, a failure removes it all
        except BaseException:
            self.uids.release(uid)
            raise
        try:
            rootfs = path / "rootfs"
            await trio.to_thread.run_sync(
                lambda: build_rootfs(rootfs, self.host, uid=uid, gid=uid, hostname=SANDBOX_HOSTNAME)
            )
            if data is None:
                data = await make_data_volume(path, uid=uid, gid=uid, quota=policy.limits.disk)
            bundle = Bundle(
                sandbox_id, uid, path, rootfs, data, launch_dir, kernel_socket, python_lib, groups
            )
            container = await self._create(bundle, process, policy, stdio)
        except BaseException:
            with trio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await self._remove(sandbox_id, uid=uid)
                await self._reap(uid)
            raise
        logger.debug("created %s with %s (uid %d)", sandbox_id, self.name, uid)
        return container

    @abc.abstractmethod
    async def _create(
        self, bundle: Bundle, process: ProcessSpec, policy: Policy, stdio: Stdio
    ) -> Container:
        """The engine's part of :meth:`create`: make the container from the bundle."""

    @abc.abstractmethod
    async def _discard(self, sandbox_id: str) -> None:
        """The engine's part of removal: the container, its processes and its cgroup.

        Absent parts are fine: it also finishes what a crash left half made or removed.
        """

    async def _reap(self, uid: int) -> None:  # noqa: B027 - a hook most engines need not fill
        """Reap what of a removed sandbox's uid this process adopted.

        Engines whose processes become our children (runc, crun) override this.
        """

    async def _remove(self, sandbox_id: str, *, uid: int | None) -> None:
        """Everything a sandbox holds, gone: container, processes, cgroup, volume, files, uid.

        Args:
            sandbox_id: the sandbox.
            uid: its uid, if known; otherwise its reservation is looked up.
        """
        await self._discard(sandbox_id)
        path = self.bundles / sandbox_id
        if path.exists():
            await remove_data_volume(path)
            await trio.to_thread.run_sync(shutil.rmtree, path)
        if uid is None:
            uids = [found for found, owner in self.owned().items() if owner == sandbox_id]
        else:
            uids = [uid]
        for reserved in uids:
            self.uids.release(reserved)

    async def _found_ids(self) -> set[str]:
        """Every sandbox id the engine still knows of (its containers, by default)."""
        return set(await self.list_ids())

    async def reconcile(self, *, keep: Collection[str] = ()) -> list[str]:
        """Kill and remove every container (with its cgroup, volume, uid) not in ``keep``.

        Orphans are found wherever a sandbox leaves a trace: the engine's containers, the
        bundle directories and the uid reservations.

        Each is tried even when another cannot be removed.

        Returns:
            The ids removed.

        Raises:
            RuntimeFailedError: some could not be removed (named); the rest were.
        """
        keep = set(keep)
        known = await self._found_ids()
        if self.bundles.is_dir():
            known |= {entry.name for entry in self.bundles.iterdir() if entry.is_dir()}
        known |= set(self.owned().values())
        removed, failed = [], []
        for sandbox_id in sorted(known - keep):
            logger.warning("removing orphaned sandbox %s", sandbox_id)
            try:
                await self._remove(sandbox_id, uid=None)
            except (AgentOSError, OSError) as exc:  # the others are still worth removing
                logger.error("could not remove orphaned sandbox %s: %s", sandbox_id, exc)  # noqa: TRY400
                failed.append(sandbox_id)
            else:
                removed.append(sandbox_id)
        await trio.to_thread.run_sync(remove_parent_if_idle, self.cgroups, self.cgroup_parent)
        if failed:
            msg = (
                f"could not remove orphaned sandboxes: {', '.join(failed)} (removed {len(removed)})"
            )
            raise RuntimeFailedError(msg)
        return removed
