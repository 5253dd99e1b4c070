"""Whom a service call acts as: an app's own kernel process, or the desktop's."""

from __future__ import annotations

import logging

import trio

from kernel.client import abi
from orchestrator.kernel_link import KernelLink
from orchestrator.services._registry import ServiceContext
from sandbox.errors import NotFoundError

__all__ = ["DESKTOP_CAPABILITIES", "ServiceContexts"]

logger = logging.getLogger("agentos.orchestrator.services")

DESKTOP_CAPABILITIES = ("system_info", "time_access")
"""What the desktop's own process may do: read the kernel's information and time."""


class ServiceContexts:
    """Finds the kernel process a call acts as.

    An app's is its top process in the kernel (the one whose parent is not of the app).
    The desktop's is a process this orchestrator spawns once (again if the kernel
    restarted) holding only :data:`DESKTOP_CAPABILITIES`.
    """

    def __init__(self, link: KernelLink) -> None:
        self._link = link
        self._desktop: int | None = None
        self._lock = trio.Lock()

    async def for_app(self, app_id: str | None) -> ServiceContext:
        """The context of ``app_id`` (None: the desktop).

        Raises:
            NotFoundError: no process of that app runs.
        """
        if app_id is None:
            return ServiceContext(self._link, None, await self._desktop_pid())
        listing = await self._link.invoke(abi.process.PROC_LIST)
        live = {
            p.pid: p for p in listing.processes if p.state is not abi.process.ProcessState.EXITED
        }
        tops = [
            p.pid
            for p in live.values()
            if p.app_id == app_id and (p.ppid not in live or live[p.ppid].app_id != app_id)
        ]
        if not tops:
            msg = f"no running app {app_id!r}"
            raise NotFoundError(msg)
        return ServiceContext(self._link, app_id, min(tops))

    async def _desktop_pid(self) -> int:
        async with self._lock:
            if self._desktop is not None:
                try:
                    state = await self._link.invoke(
                        abi.process.PROC_STATE, abi.process.ProcPidArgs(pid=self._desktop)
                    )
                except abi.SyscallNotFoundError:  # a new kernel: spawn it again
                    pass
                else:
                    if state.state is not abi.process.ProcessState.EXITED:
                        return self._desktop
            listing = await self._link.invoke(abi.process.PROC_LIST)
            earlier = [  # one a previous run of the web tier left: the same, reused
                p.pid
                for p in listing.processes
                if p.name == "desktop" and p.app_id is None and p.ppid == 0
                and p.state is not abi.process.ProcessState.EXITED
                and sorted(map(str, p.capabilities)) == sorted(DESKTOP_CAPABILITIES)
            ]  # fmt: skip
            if earlier:
                self._desktop = min(earlier)
                return self._desktop
            info = await self._link.call(
                "proc.spawn",
                {"name": "desktop", "capabilities": list(DESKTOP_CAPABILITIES), "detached": True},
            )
            self._desktop = int(info["pid"])
            logger.info("the desktop's own kernel process is pid %d", self._desktop)
            return self._desktop
