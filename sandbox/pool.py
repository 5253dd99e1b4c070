"""A warm pool: sandboxes created ahead of need, started the moment a command arrives.

Creating a sandbox (rootfs, /data volume, ``runc create``) is most of its start-up cost;
starting a created one is a few milliseconds. A created container's command is fixed,
though, so a pooled one runs a tiny launcher: the host's ``/bin/sh`` reading a script from
a read-only directory bound into the sandbox. Handing it out writes the real command
there (every word quoted, ending in ``exec env -i ... ARGV``) and starts it.

A pool keeps ``size`` sandboxes of one policy ready, refills in the background as they
are taken, and deletes the ready ones when its service stops. When it is empty, a take
creates a sandbox on the spot rather than wait.
"""

from __future__ import annotations

import collections
import logging
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sandbox.errors import FailedPreconditionError, InvalidArgumentError
from sandbox.oci.spec import LAUNCH_DIR, ProcessSpec, sandbox_environment
from sandbox.policy import Policy
from sandbox.runtime import Container, Runtime, Stdio

__all__ = ["Prepared", "WarmPool", "prepare"]

logger = logging.getLogger("agentos.sandbox.pool")

_SCRIPT = "command"
_LAUNCHER = ["/bin/sh", f"{LAUNCH_DIR}/{_SCRIPT}"]
_CLEANUP_SECONDS = 30.0


@dataclass
class Prepared:
    """A created (not started) sandbox, with the read ends of its output pipes.

    Whoever holds it must read ``stdout``/``stderr`` (or close them) and, in the end,
    delete the container: :meth:`discard` does both for one never used.
    """

    container: Container
    stdout: int
    stderr: int
    launch: Path | None = None
    _closed: bool = field(default=False, repr=False)

    def set_command(self, process: ProcessSpec) -> None:
        """Write the command a pooled sandbox will exec when started."""
        if self.launch is None:
            msg = "only a pooled sandbox takes its command after creation"
            raise TypeError(msg)
        env = sandbox_environment(process, home="/data")
        words = ["exec", "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *process.argv]
        cwd = process.cwd or "/data"
        script = f"cd {shlex.quote(cwd)} || exit 126\n{shlex.join(words)}\n"
        (self.launch / _SCRIPT).write_text(script)
        (self.launch / _SCRIPT).chmod(0o644)  # whatever the umask: the sandbox's uid reads it

    def close_pipes(self) -> None:
        """Close the read ends still held here (-1: handed to someone who closes it)."""
        if not self._closed:
            for fd in (self.stdout, self.stderr):
                if fd >= 0:
                    os.close(fd)
            self._closed = True

    async def discard(self) -> None:
        """Delete the sandbox and release everything it holds."""
        self.close_pipes()
        with trio.move_on_after(_CLEANUP_SECONDS, shield=True):
            await self.container.delete()
        if self.launch is not None:
            shutil.rmtree(self.launch, ignore_errors=True)


async def prepare(
    runtime: Runtime,
    process: ProcessSpec,
    policy: Policy,
    *,
    stdin: int | None = None,
    data: Path | None = None,
    launch: Path | None = None,
) -> Prepared:
    """Create a sandbox whose output goes to new pipes; the caller gets their read ends."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        container = await runtime.create(
            process, policy, stdio=Stdio(stdin=stdin, stdout=out_write, stderr=err_write),
            data=data, launch_dir=launch,
        )  # fmt: skip
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        os.close(out_write)  # the container holds its own copies now
        os.close(err_write)
    return Prepared(container, out_read, err_read, launch)


class WarmPool:
    """Keeps ``size`` sandboxes of ``policy`` created and ready to start.

    Run :meth:`run` in a nursery (``await nursery.start(pool.run)``); :meth:`take` hands
    a ready sandbox out. Stopping the service deletes the sandboxes still waiting.
    """

    def __init__(self, runtime: Runtime, policy: Policy, *, size: int = 4) -> None:
        if size < 1:
            msg = "a warm pool holds at least one sandbox"
            raise InvalidArgumentError(msg)
        self.runtime = runtime
        self.policy = policy
        self.size = size
        self._ready: collections.deque[Prepared] = collections.deque()
        self._taken = trio.Event()
        self._launch_root = runtime.state_dir / "launch"  # one directory per sandbox in it
        self._running = False
        self.created = 0
        self.taken_warm = 0
        self.taken_cold = 0

    @property
    def ready(self) -> int:
        """Sandboxes created and waiting to be taken."""
        return len(self._ready)

    async def _one(self) -> Prepared:
        launch = await trio.to_thread.run_sync(_launch_dir, _ensure(self._launch_root))
        try:
            prepared = await prepare(
                self.runtime, ProcessSpec(_LAUNCHER), self.policy, launch=launch
            )
        except BaseException:
            shutil.rmtree(launch, ignore_errors=True)
            raise
        self.created += 1
        return prepared

    async def run(
        self, *, task_status: trio.TaskStatus[WarmPool] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Fill the pool, refill it as sandboxes are taken; drain it when cancelled."""
        logger.info("warm pool of %d %s sandboxes starting", self.size, self.policy.name)
        self._running = True
        try:
            task_status.started(self)
            while True:
                while len(self._ready) < self.size:
                    self._ready.append(await self._one())
                await self._taken.wait()
                self._taken = trio.Event()
        finally:
            self._running = False
            with trio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await self._drain()

    async def _drain(self) -> None:
        drained = 0
        while self._ready:
            await self._ready.popleft().discard()
            drained += 1
        logger.info("warm pool drained (%d ready sandboxes deleted)", drained)

    async def take(self, process: ProcessSpec) -> Prepared:
        """A created sandbox that will run ``process`` once started.

        Raises:
            FailedPreconditionError: the pool's service is not running.
        """
        if not self._running:
            msg = "the warm pool is not running"
            raise FailedPreconditionError(msg)
        if self._ready:
            prepared = self._ready.popleft()
            self.taken_warm += 1
            self._taken.set()
        else:
            prepared = await self._one()
            self.taken_cold += 1
        try:
            prepared.set_command(process)
        except BaseException:
            await prepared.discard()
            raise
        return prepared


def _launch_dir(root: Path) -> Path:
    """A directory for one pooled sandbox's command, readable by its uid."""
    launch = Path(tempfile.mkdtemp(dir=root))
    launch.chmod(0o755)
    return launch


def _ensure(directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory
