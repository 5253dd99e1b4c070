"""The interface every container runtime implements (runc and crun, Docker)."""

from __future__ import annotations

import abc
import secrets
from collections.abc import Collection
from pathlib import Path

import trio

from sandbox.cgroups import Cgroup, CgroupManager, CgroupStats
from sandbox.errors import FailedPreconditionError, UnsupportedError
from sandbox.oci.spec import ProcessSpec
from sandbox.policy import NetworkMode, Policy
from sandbox.runtime._oci_cli import Stdio
from sandbox.runtime._types import ContainerState, ExitStatus
from sandbox.runtime._uids import UidAllocator

__all__ = ["Container", "Runtime", "check_admissible", "new_sandbox_id"]


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


class Runtime(abc.ABC):
    """Makes containers under one state directory; reconciles them after a restart.

    Attributes:
        name: runc, crun or docker.
        state_dir: where its bundles, volumes and uid reservations live.
        bundles: the directory holding one directory of files per sandbox.
        cgroups: the host's cgroups.
        cgroup_parent: the cgroup its containers' cgroups are made in.
        uids: its uid reservations.
    """

    name: str
    state_dir: Path
    bundles: Path
    cgroups: CgroupManager
    cgroup_parent: str
    uids: UidAllocator

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

    @abc.abstractmethod
    async def create(
        self,
        process: ProcessSpec,
        policy: Policy,
        *,
        stdio: Stdio,
        data: Path | None = None,
        sandbox_id: str | None = None,
        launch_dir: Path | None = None,
    ) -> Container:
        """Create (not start) a container.

        Args:
            process: what it will run.
            policy: its limits, mounts and network.
            stdio: its standard streams.
            data: a host directory to show at /data; by default a fresh private one,
                with the policy's disk quota.
            sandbox_id: its id; a fresh one by default.
            launch_dir: a host directory to show read-only at ``LAUNCH_DIR`` (how a
                pooled sandbox learns its command after creation).

        Raises:
            UnsupportedError: the policy asks for what this runtime cannot do yet.
            RuntimeFailedError: the runtime refused.
        """

    @abc.abstractmethod
    async def reconcile(self, *, keep: Collection[str] = ()) -> list[str]:
        """Kill and remove every container (with its cgroup, volume, uid) not in ``keep``.

        Returns:
            The ids removed.
        """
