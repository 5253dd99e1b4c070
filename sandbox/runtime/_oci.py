"""Containers through an OCI runtime (runc, or crun on pure cgroup v2 hosts).

State under ``state_dir``::

    oci/            the runtime's own state (its --root), ours alone
    bundles/<id>/   config.json, rootfs/, data/ (+ data.img), record.json, runtime.log
    uids/<uid>      uid reservations

Everything a container holds is found again from these after a restart, so
:meth:`OciRuntime.reconcile` can kill and remove what nobody owns any more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import trio

from sandbox.cgroups import Cgroup, CgroupManager, CgroupStats
from sandbox.errors import FailedPreconditionError
from sandbox.oci.rootfs import HostLayout, build_rootfs
from sandbox.oci.spec import CGROUP_PARENT, ProcessSpec, build_config, cgroups_path
from sandbox.policy import Policy
from sandbox.runtime._base import Container, Runtime, check_admissible, new_sandbox_id
from sandbox.runtime._cgroup_lock import creating_cgroups, remove_parent_if_idle
from sandbox.runtime._oci_cli import OciCli, Stdio
from sandbox.runtime._reaper import become_subreaper, reap_orphans, wait_for_exit
from sandbox.runtime._types import ContainerState, ExitStatus
from sandbox.runtime._uids import UidAllocator
from sandbox.runtime._volumes import make_data_volume, remove_data_volume

__all__ = ["OciContainer", "OciRuntime"]

logger = logging.getLogger("agentos.sandbox.runtime")

_CLEANUP_SECONDS = 30.0
_REAP_SECONDS = 10.0


class OciRuntime(Runtime):
    """Sandboxes as OCI containers made by ``binary`` (runc or crun).

    Creating one makes this process a child subreaper, so that containers' inits are
    reparented to it and their exit statuses can be read.
    """

    def __init__(
        self,
        binary: Path,
        state_dir: Path,
        *,
        cgroups: CgroupManager | None = None,
        host: HostLayout | None = None,
        uids: UidAllocator | None = None,
    ) -> None:
        self.name = binary.name
        self.state_dir = state_dir
        self.cli = OciCli(binary, state_dir / "oci")
        self.cgroups = cgroups or CgroupManager()
        self.host = host or HostLayout.detect()
        self.uids = uids or UidAllocator(state_dir / "uids")
        self.bundles = state_dir / "bundles"
        self.cgroup_parent = CGROUP_PARENT
        become_subreaper()

    async def describe(self) -> str:
        return f"{await self.cli.version()} ({self.cgroups.layout.describe()})"

    async def list_ids(self) -> list[str]:
        return await self.cli.list_ids()

    async def create(
        self,
        process: ProcessSpec,
        policy: Policy,
        *,
        stdio: Stdio,
        data: Path | None = None,
        sandbox_id: str | None = None,
        launch_dir: Path | None = None,
    ) -> OciContainer:
        await check_admissible(policy)
        sandbox_id = sandbox_id or new_sandbox_id()
        self.bundles.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.cli.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        uid = self.uids.reserve(self.owner(sandbox_id))
        bundle = self.bundles / sandbox_id
        container = OciContainer(self, sandbox_id, uid, bundle)
        try:
            bundle.mkdir(mode=0o700)
            _write_json(
                bundle / "record.json", {"id": sandbox_id, "uid": uid, "created_at": time.time()}
            )
            await trio.to_thread.run_sync(
                lambda: build_rootfs(
                    bundle / "rootfs", self.host, uid=uid, gid=uid, hostname="sandbox"
                )
            )
            if data is None:
                data = await make_data_volume(bundle, uid=uid, gid=uid, quota=policy.limits.disk)
            config = build_config(
                sandbox_id=sandbox_id, process=process, policy=policy, uid=uid, gid=uid,
                host=self.host, cgroup_mode=self.cgroups.mode, data=data, launch=launch_dir,
            )  # fmt: skip
            _write_json(bundle / "config.json", config)
            async with creating_cgroups():
                container.pid = await self.cli.create(sandbox_id, bundle, stdio)
        except BaseException:
            with trio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await container.delete()
            raise
        container.state = ContainerState.CREATED
        logger.debug("created %s (uid %d, init pid %d)", sandbox_id, uid, container.pid)
        return container

    async def reconcile(self, *, keep: Collection[str] = ()) -> list[str]:
        keep = set(keep)
        known: set[str] = set(await self.cli.list_ids())
        if self.bundles.is_dir():
            known |= {entry.name for entry in self.bundles.iterdir() if entry.is_dir()}
        known |= {name.rsplit("/", 1)[1] for name in self.cgroups.children(CGROUP_PARENT)}
        known |= set(self.owned().values())
        uids = {sandbox_id: uid for uid, sandbox_id in self.owned().items()}
        removed = []
        for sandbox_id in sorted(known - keep):
            logger.warning("removing orphaned sandbox %s", sandbox_id)
            await _remove(self, sandbox_id, uid=None)
            if sandbox_id in uids:  # if this very process made it, its init is our child
                await trio.to_thread.run_sync(reap_orphans, uids[sandbox_id])
            removed.append(sandbox_id)
        for uid, sandbox_id in self.owned().items():
            if sandbox_id not in keep:
                self.uids.release(uid)
        await trio.to_thread.run_sync(remove_parent_if_idle, self.cgroups, CGROUP_PARENT)
        return removed


class OciContainer(Container):
    """A container made by :class:`OciRuntime`."""

    def __init__(self, runtime: OciRuntime, sandbox_id: str, uid: int, bundle: Path) -> None:
        self._runtime = runtime
        self.id = sandbox_id
        self.uid = uid
        self.bundle = bundle
        self.pid = 0
        self.state = ContainerState.CREATED
        self._exit: ExitStatus | None = None
        self._reaping = trio.Lock()
        self._cgroup = runtime.cgroups.cgroup(cgroups_path(sandbox_id))

    @property
    def cgroup(self) -> Cgroup:
        return self._cgroup

    async def start(self) -> None:
        self.state.check(ContainerState.RUNNING)
        await self._runtime.cli.start(self.id, log=self.bundle / "runtime.log")
        self.state = ContainerState.RUNNING

    async def wait(self) -> ExitStatus:
        async with self._reaping:  # one task reaps; the others read the result
            if self._exit is None:
                if self.state is ContainerState.CREATED:
                    msg = f"sandbox {self.id} has not been started"
                    raise FailedPreconditionError(msg)
                self._exit = ExitStatus.from_init(await wait_for_exit(self.pid))
                self.state = ContainerState.STOPPED
        return self._exit

    async def signal(self, signum: int) -> None:
        if self._exit is None and self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    async def kill(self) -> None:
        if self.state is ContainerState.DELETED:
            return
        await trio.to_thread.run_sync(self._cgroup.kill)

    async def stats(self) -> CgroupStats:
        return await trio.to_thread.run_sync(self._cgroup.stats)

    async def exec(self, process: ProcessSpec, stdio: Stdio) -> ExitStatus:
        if self.state is not ContainerState.RUNNING:
            msg = f"sandbox {self.id} is {self.state.value}, not running"
            raise FailedPreconditionError(msg)
        config = json.loads((self.bundle / "config.json").read_text())
        spec: dict[str, Any] = dict(config["process"])
        spec["args"] = list(process.argv)
        spec["env"] = [*spec["env"], *(f"{k}={v}" for k, v in process.env.items())]
        spec["cwd"] = process.cwd or spec["cwd"]
        code = await self._runtime.cli.exec(self.id, spec, stdio, workdir=self.bundle)
        return ExitStatus(code=code)

    async def delete(self) -> None:
        if self.state is ContainerState.DELETED:
            return
        await _remove(self._runtime, self.id, uid=self.uid)
        # Our adopted init, once gone, is reaped here; the kernel has it reap the rest of
        # its pid namespace before it finishes exiting.
        if self.pid and self._exit is None:
            with trio.move_on_after(_REAP_SECONDS):
                async with self._reaping:
                    if self._exit is None:
                        with contextlib.suppress(ChildProcessError, ProcessLookupError):
                            self._exit = await wait_for_exit(self.pid)
        self.state = ContainerState.DELETED


async def _remove(runtime: OciRuntime, sandbox_id: str, *, uid: int | None) -> None:
    """Everything a sandbox holds, gone: container, processes, cgroup, volume, files, uid."""
    await runtime.cli.delete(sandbox_id)
    cgroup = runtime.cgroups.cgroup(cgroups_path(sandbox_id))

    def drop_cgroup() -> None:
        if cgroup.exists():
            cgroup.kill()
            cgroup.delete()
        remove_parent_if_idle(runtime.cgroups, CGROUP_PARENT)

    await trio.to_thread.run_sync(drop_cgroup)
    bundle = runtime.bundles / sandbox_id
    if bundle.exists():
        await remove_data_volume(bundle)
        await trio.to_thread.run_sync(shutil.rmtree, bundle)
    if uid is not None:
        runtime.uids.release(uid)
    else:
        for reserved, owner in runtime.owned().items():
            if owner == sandbox_id:
                runtime.uids.release(reserved)


def _write_json(path: Path, document: object) -> None:
    path.write_text(json.dumps(document, indent=1))
