"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import trio

from kernel.config import KernelSettings
from kernel.core import Kernel
from kernel.service import KernelHandle, KernelService


class RunningKernel:
    """A kernel service a test can stop and start again."""

    def __init__(self, nursery: trio.Nursery, settings: KernelSettings, kernel: Kernel) -> None:
        self._nursery = nursery
        self.settings = settings
        self.kernel = kernel
        self._scope: trio.CancelScope | None = None
        self.handle: KernelHandle | None = None
        self._stopped = trio.Event()

    @property
    def socket(self) -> Path:
        return self.settings.socket_path

    async def start(self) -> KernelHandle:
        self._stopped = trio.Event()

        async def serve(task_status: trio.TaskStatus[KernelHandle]) -> None:
            try:
                with trio.CancelScope() as self._scope:
                    await KernelService(self.settings, kernel=self.kernel).run(
                        task_status=task_status
                    )
            finally:
                self._stopped.set()

        self.handle = await self._nursery.start(serve)
        return self.handle

    async def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()
        await self._stopped.wait()


@functools.cache
def is_root() -> bool:
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(not is_root(), reason="needs root: acts as another uid")


def agentos_argv(*args: str) -> list[str]:
    """The installed ``agentos`` console script (beside this Python), with ``args``."""
    script = Path(sys.executable).parent / "agentos"
    assert script.exists(), f"{script} is missing: run the tests with the venv's python"
    return [os.fspath(script), *args]


def agentos_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment for an ``agentos`` subprocess: no AGENTOS_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env["AGENTOS_DATA_DIR"] = os.fspath(data_dir)
    env.update(extra)
    return env


async def run_agentos(
    *args: str, env: dict[str, str], timeout: float = 60
) -> CompletedProcess[bytes]:
    """Run one ``agentos`` command to completion, capturing its output."""
    with trio.fail_after(timeout):
        return await trio.run_process(
            agentos_argv(*args), env=env, capture_stdout=True, capture_stderr=True, check=False
        )


class AgentosProcess:
    """A long-running ``agentos`` command whose output the test can wait on."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._children: set[int] = set()

    @classmethod
    async def start(
        cls,
        nursery: trio.Nursery,
        *args: str,
        env: dict[str, str],
        uid: int | None = None,
        cwd: Path | None = None,
        umask: int = 0o022,
    ) -> AgentosProcess:
        """Start ``agentos ARGS`` in ``cwd``; as ``uid`` (and its primary group) if given."""
        as_user: dict[str, object] = {}
        if uid is not None:
            import pwd  # noqa: PLC0415

            entry = pwd.getpwuid(uid)
            as_user = {"user": uid, "group": entry.pw_gid, "extra_groups": []}
        process = await trio.lowlevel.open_process(
            agentos_argv(*args),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd or "/",
            umask=umask,
            **as_user,  # type: ignore[arg-type]
        )
        running = cls(process)
        assert process.stdout is not None
        assert process.stderr is not None
        nursery.start_soon(running._pump, process.stdout, running.stdout)
        nursery.start_soon(running._pump, process.stderr, running.stderr)
        return running

    @staticmethod
    async def _pump(stream: trio.abc.ReceiveStream, sink: bytearray) -> None:
        async with stream:
            async for chunk in stream:
                sink.extend(chunk)

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """Its child processes now; remembered, so teardown can end them even if it dies."""
        found = web_tier_children(self.pid)
        self._children.update(found)
        return found

    async def wait_for_output(
        self, pattern: str, *, timeout: float = 60, stderr: bool = False
    ) -> re.Match[str]:
        sink = self.stderr if stderr else self.stdout
        with trio.fail_after(timeout):
            while True:
                match = re.search(pattern, sink.decode(errors="replace"))
                if match:
                    return match
                if self.process.returncode is not None:
                    await trio.sleep(0.1)  # let the pumps drain
                    match = re.search(pattern, sink.decode(errors="replace"))
                    if match:
                        return match
                    msg = (
                        f"agentos exited ({self.process.returncode}) before printing {pattern!r}\n"
                        f"stdout: {self.stdout.decode(errors='replace')}\n"
                        f"stderr: {self.stderr.decode(errors='replace')}"
                    )
                    raise AssertionError(msg)
                await trio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        with trio.fail_after(timeout):
            return await self.process.wait()

    async def terminate(self, *, grace: float = 10) -> None:
        """Stop the process and anything it started, whatever state the test left them in."""
        with trio.CancelScope(shield=True):
            if self.process.returncode is None:
                self.children()
            if self.process.returncode is None:
                self.process.send_signal(signal.SIGTERM)
                with trio.move_on_after(grace):
                    await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            for child in self._children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)


def web_tier_children(pid: int) -> list[int]:
    """Child pids of ``pid`` (the web tier of ``agentos up``), whichever thread forked them."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    return sorted(children)


def uid_of(pid: int) -> int:
    """The real uid of a live process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    msg = f"no Uid in /proc/{pid}/status"
    raise AssertionError(msg)
