"""The command line of OCI runtimes (runc, crun): create, start, kill, delete, state, exec.

Each call is a subprocess with a deadline. The runtime writes its own errors to a log
file (``--log``), never to the container's stderr, which it hands to the container.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from sandbox.errors import DeadlineExceededError
from sandbox.runtime._types import RuntimeFailedError

__all__ = ["OciCli", "Stdio"]

logger = logging.getLogger("agentos.sandbox.runtime")

# The runtime makes mount points inside the sandbox's root (/run/agentos/launch, a
# policy's mount destinations) with this umask, not the caller's: the sandbox's uid
# must be able to walk them.
_UMASK = 0o022
# How long a cancelled exec waits for its process to start, then for the runtime to exit.
_EXEC_END_SECONDS = 5.0


@dataclass(frozen=True)
class Stdio:
    """File descriptors a container's process gets as 0, 1 and 2 (None: /dev/null)."""

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None


def _stdio_options(stdio: Stdio) -> dict[str, Any]:
    return {
        "stdin": subprocess.DEVNULL if stdio.stdin is None else stdio.stdin,
        "stdout": subprocess.DEVNULL if stdio.stdout is None else stdio.stdout,
        "stderr": subprocess.DEVNULL if stdio.stderr is None else stdio.stderr,
    }


class OciCli:
    """One OCI runtime binary, with its own state directory.

    Args:
        binary: path of runc or crun.
        root: the runtime's state directory (``--root``), ours alone.
        timeout: deadline of every call except exec.
    """

    def __init__(self, binary: Path, root: Path, *, timeout: float = 30.0) -> None:
        self.binary = binary
        self.name = binary.name
        self.root = root
        self.timeout = timeout

    def _log_args(self, log: Path) -> list[str]:
        if self.name == "crun":
            return [f"--log=file:{log}"]
        return ["--log", os.fspath(log), "--log-format", "json"]

    def _argv(self, *args: str, log: Path | None = None) -> list[str]:
        argv = [os.fspath(self.binary), "--root", os.fspath(self.root)]
        if log is not None:
            argv += self._log_args(log)
        return [*argv, *args]

    async def _run(
        self, *args: str, log: Path | None = None, stdio: Stdio | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        argv = self._argv(*args, log=log)
        options: dict[str, Any] = {"check": False, "umask": _UMASK}
        if stdio is None:
            options |= {"capture_stdout": True, "capture_stderr": True, "stdin": subprocess.DEVNULL}
        else:
            options |= _stdio_options(stdio)
        try:
            with trio.fail_after(self.timeout):
                result = await trio.run_process(argv, **options)
        except trio.TooSlowError:
            msg = f"{self.name} {args[0]} did not finish within {self.timeout:g}s"
            raise DeadlineExceededError(msg) from None
        if check and result.returncode != 0:
            prefix = f"{self.name} {args[0]} failed: "
            raise RuntimeFailedError(prefix + _reason(result, log).removeprefix(prefix))
        return result

    async def version(self) -> str:
        """The runtime's version line."""
        result = await self._run("--version")
        return result.stdout.decode().splitlines()[0]

    async def create(self, container_id: str, bundle: Path, stdio: Stdio) -> int:
        """Create the container (its init waits for :meth:`start`); return init's pid."""
        pid_file = bundle / "init.pid"
        await self._run(
            "create", "--bundle", os.fspath(bundle), "--pid-file", os.fspath(pid_file),
            container_id, log=bundle / "runtime.log", stdio=stdio,
        )  # fmt: skip
        return int(pid_file.read_text())

    async def start(self, container_id: str, *, log: Path | None = None) -> None:
        """Let the created container's process run."""
        await self._run("start", container_id, log=log)

    async def delete(self, container_id: str) -> None:
        """Remove the container (forcibly: a running one is killed); absent is fine."""
        result = await self._run("delete", "--force", container_id, check=False)
        if result.returncode != 0 and not _gone(result):
            raise RuntimeFailedError(f"{self.name} delete failed: {_reason(result, None)}")

    async def list_ids(self) -> list[str]:
        """Every container in our state directory."""
        if not self.root.exists():
            return []
        result = await self._run("list", "--format", "json")
        entries = json.loads(result.stdout or b"null") or []
        return [str(entry["id"]) for entry in entries]

    async def exec(
        self,
        container_id: str,
        process: dict[str, Any],
        stdio: Stdio,
        *,
        workdir: Path,
        kill_tree: Callable[[int], object],
    ) -> int:
        """Run one more process in the container; wait for it; return its status code.

        No deadline of its own: the caller bounds it (the process may run a long time).
        Cancelled, the process and what it started are killed at once with
        ``kill_tree(pid)`` (the runtime would only forward a SIGTERM, which the command
        may ignore), and then the runtime, which exits when its process does.
        """
        token = os.urandom(4).hex()
        process_file = workdir / f"exec-{token}.json"
        pid_file = workdir / f"exec-{token}.pid"
        process_file.write_text(json.dumps(process))
        argv = self._argv(
            "exec", "--process", os.fspath(process_file), "--pid-file", os.fspath(pid_file),
            container_id,
        )  # fmt: skip

        async def end(runtime: trio.Process) -> None:
            with trio.move_on_after(_EXEC_END_SECONDS):
                while runtime.returncode is None:
                    if pid := _read_pid(pid_file):
                        # The runtime has not reaped it (it would have exited), so the
                        # pid is still its process's.
                        await trio.to_thread.run_sync(kill_tree, pid)
                        break
                    await trio.sleep(0.01)
            with trio.move_on_after(_EXEC_END_SECONDS):
                await runtime.wait()
            runtime.kill()

        try:
            result = await trio.run_process(
                argv, check=False, umask=_UMASK, deliver_cancel=end, **_stdio_options(stdio)
            )
        finally:
            process_file.unlink(missing_ok=True)
            pid_file.unlink(missing_ok=True)
        return result.returncode


def _read_pid(path: Path) -> int:
    """The pid the runtime wrote to ``path``, or 0 while it has not (fully) written it."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0


def _gone(result: subprocess.CompletedProcess[bytes]) -> bool:
    text = (result.stderr or b"").decode(errors="replace").lower()
    return "does not exist" in text or "not found" in text or "container not running" in text


def _reason(result: subprocess.CompletedProcess[bytes], log: Path | None) -> str:
    """The runtime's own words for a failure: its log's errors, else its stderr."""
    messages: list[str] = []
    if log is not None and log.exists():
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                messages.append(line.strip())
                continue
            if entry.get("level") in ("error", "fatal"):
                messages.append(str(entry.get("msg", "")))
    if not messages and result.stderr:
        messages.append(result.stderr.decode(errors="replace").strip())
    return "; ".join(m for m in messages if m) or f"exit status {result.returncode}"
