"""Fixtures shared by every test package."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from kernel.config import KernelSettings
from kernel.core import Kernel
from tests._support import AgentosProcess, RunningKernel

pytest_plugins = ["tests._containers"]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data directory with a short path (Unix socket paths are limited to 107 bytes)
    that other users may enter (the web tier drops to an unprivileged user under root)."""
    path = Path(tempfile.mkdtemp(prefix="aos-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def running_kernel(nursery: trio.Nursery, data_dir: Path) -> AsyncIterator[RunningKernel]:
    """A kernel serving on ``data_dir``'s default admin socket."""
    running = RunningKernel(nursery, KernelSettings(data_dir=data_dir), Kernel())
    await running.start()
    yield running


@pytest.fixture
async def spawn_agentos(nursery: trio.Nursery) -> AsyncIterator[object]:
    """Start ``agentos`` subprocesses; all of them (and their web tiers) end with the test."""
    started: list[AgentosProcess] = []

    async def spawn(
        *args: str,
        env: dict[str, str],
        uid: int | None = None,
        cwd: Path | None = None,
        umask: int = 0o022,
    ) -> AgentosProcess:
        process = await AgentosProcess.start(nursery, *args, env=env, uid=uid, cwd=cwd, umask=umask)
        started.append(process)
        return process

    yield spawn
    for process in started:
        await process.terminate()
