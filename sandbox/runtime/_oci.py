"""Containers through an OCI runtime (runc, or crun on pure cgroup v2 hosts).

State under ``state_dir``::

    runc/state/           the runtime's own state (its --root), ours alone
    runc/bundles/<id>/    config.json, rootfs/, data/ (+ data.img), runtime.log
    uids/<uid>            uid reservations, shared with the other runtimes

(``crun/`` likewise), and each sandbox's cgroup is ``agentos-runc-<tag>/<id>``, where the
tag names the state directory: two owners on one host (a kernel and a one-shot
``agentos sandbox run``, or two kernels) never take each other's cgroups for orphans.

Everything a container holds is found again from these after a restart, so
:meth:`OciRuntime.reconcile` can kill and remove what nobody owns any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import trio

from sandbox.cgroups import Cgroup, CgroupManager, CgroupStats
from sandbox.errors import FailedPreconditionError
from sandbox.oci.rootfs import HostLayout
from sandbox.oci.spec import ProcessSpec, build_config
from sandbox.policy import Policy
from sandbox.runtime._base import Bundle, Container, Runtime
from sandbox.runtime._cgroup_lock import creating_cgroups, remove_parent_if_idle
from sandbox.runtime._oci_cli import OciCli, Stdio
from sandbox.runtime._reaper import become_subreaper, reap_orphans, wait_for_exit
from sandbox.runtime._types import ContainerState, ExitStatus
from sandbox.runtime._uids import UidAllocator

__all__ = ["OciContainer", "OciRuntime"]

_REAP_SECONDS = 10.0
_REAP_INTERVAL = 0.05


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
        # Each runtime's own bundles, state and cgroups: runc's reconcile must not take
        # crun's sandboxes for orphans, nor another state directory's. Only the uid
        # reservations are shared.
        tag = hashlib.sha256(os.fsencode(state_dir.absolute())).hexdigest()[:8]
        super().__init__(
            state_dir,
            bundles=f"{binary.name}/bundles",
            cgroup_parent=f"agentos-{binary.name}-{tag}",
            cgroups=cgroups,
            host=host,
            uids=uids,
        )
        self.name = binary.name
        self.cli = OciCli(binary, state_dir / binary.name / "state")
        become_subreaper()

    async def describe(self) -> str:
        return f"{await self.cli.version()} ({self.cgroups.layout.describe()})"

    async def list_ids(self) -> list[str]:
        return await self.cli.list_ids()

    async def _create(
        self, bundle: Bundle, process: ProcessSpec, policy: Policy, stdio: Stdio
    ) -> OciContainer:
        self.cli.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = build_config(
            cgroup=self.cgroup_of(bundle.id), process=process, policy=policy, uid=bundle.uid,
            gid=bundle.uid, host=self.host, cgroup_mode=self.cgroups.mode, data=bundle.data,
            groups=bundle.groups,
            launch=bundle.launch, kernel_socket=bundle.kernel_socket, python_lib=bundle.python_lib,
        )  # fmt: skip
        (bundle.path / "config.json").write_text(json.dumps(config, indent=1))
        container = OciContainer(self, bundle.id, bundle.uid, bundle.path)
        async with creating_cgroups():
            container.pid = await self.cli.create(bundle.id, bundle.path, stdio)
        return container

    async def _discard(self, sandbox_id: str) -> None:
        uids = [uid for uid, owner in self.owned().items() if owner == sandbox_id]
        async with trio.open_nursery() as nursery:
            for uid in uids:
                nursery.start_soon(self._reap_while_dying, uid)
            await self.cli.delete(sandbox_id)
            nursery.cancel_scope.cancel()
        cgroup = self.cgroups.cgroup(self.cgroup_of(sandbox_id))

        def drop_cgroup() -> None:
            if cgroup.exists():
                cgroup.kill()
                cgroup.delete()
            remove_parent_if_idle(self.cgroups, self.cgroup_parent)

        await trio.to_thread.run_sync(drop_cgroup)

    async def _reap_while_dying(self, uid: int) -> None:
        """Reap the sandbox's processes we adopted as they die, until cancelled.

        One whose runtime died (a killed ``runc exec``) is our child: until it is reaped
        its pid namespace cannot finish collapsing, and the container's init, waiting for
        it, cannot exit for the runtime's delete to finish.
        """
        while True:
            await trio.to_thread.run_sync(reap_orphans, uid)
            await trio.sleep(_REAP_INTERVAL)

    async def _reap(self, uid: int) -> None:
        # A creation undone after `runc create` leaves its init, adopted by us, a zombie.
        await trio.to_thread.run_sync(reap_orphans, uid)

    async def _found_ids(self) -> set[str]:
        found = await super()._found_ids()
        children = self.cgroups.children(self.cgroup_parent)
        return found | {name.rsplit("/", 1)[1] for name in children}

    async def reconcile(self, *, keep: Collection[str] = ()) -> list[str]:
        uids = {sandbox_id: uid for uid, sandbox_id in self.owned().items()}
        removed = await super().reconcile(keep=keep)
        for sandbox_id in removed:
            if sandbox_id in uids:  # if this very process made it, its init is our child
                await trio.to_thread.run_sync(reap_orphans, uids[sandbox_id])
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
        self._cgroup = runtime.cgroups.cgroup(runtime.cgroup_of(sandbox_id))

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
        code = await self._runtime.cli.exec(
            self.id, spec, stdio, workdir=self.bundle, kill_tree=self._cgroup.kill_tree
        )
        return ExitStatus(code=code)

    async def delete(self) -> None:
        if self.state is ContainerState.DELETED:
            return
        await self._runtime._remove(self.id, uid=self.uid)  # noqa: SLF001 - its runtime's
        # Our adopted init, once gone, is reaped here; the kernel has it reap the rest of
        # its pid namespace before it finishes exiting.
        if self.pid and self._exit is None:
            with trio.move_on_after(_REAP_SECONDS):
                async with self._reaping:
                    if self._exit is None:
                        with contextlib.suppress(ChildProcessError, ProcessLookupError):
                            self._exit = await wait_for_exit(self.pid)
        # Anything else of its uid we adopted (a process `runc exec` started, orphaned
        # when runc was killed) is dead now too: reap it rather than keep a zombie.
        await trio.to_thread.run_sync(reap_orphans, self.uid)
        self.state = ContainerState.DELETED
