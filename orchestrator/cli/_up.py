"""``agentos up``: the kernel and the web tier together, in one process tree.

The kernel runs in this process. The web tier runs as a child process (``agentos
orchestrator``) so that it can hold no privilege: started as root, ``up`` runs it as an
unprivileged user (``agentos`` if that user exists, else ``nobody``, or
``--orchestrator-user``), and hands it the admin socket by making that user the socket's
owner and an allowed peer. SIGINT or SIGTERM stops the web tier first (gracefully), then
the kernel; the socket file and the kernel record are gone when ``up`` exits 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import pwd
import signal
import socket
import stat
import sys
import sysconfig
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.config import KernelSettings
from kernel.service import KernelService, prepare_data_dir
from orchestrator.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_common_options,
    build_settings,
    configure_logging,
    fail,
)
from orchestrator.cli._tiers import (
    STOP_SIGNALS,
    add_runtime_option,
    add_web_options,
    admin_token_hint,
    announce,
    web_settings,
)
from orchestrator.config import OrchestratorSettings

__all__ = ["add_up_command"]

logger = logging.getLogger("agentos.up")

_START_SECONDS = 60.0
_STOP_SECONDS = 15.0
_EXIT_WAIT_SECONDS = 5.0


class UpSettings(BaseSettings):
    """Settings of the supervisor itself."""

    model_config = SettingsConfigDict(env_prefix="AGENTOS_", extra="ignore", frozen=True)

    orchestrator_user: str | None = Field(
        default=None, description="user the web tier runs as when `up` starts as root"
    )


@dataclass(frozen=True)
class WebUser:
    """Who the web tier runs as."""

    name: str
    uid: int
    gid: int


def add_up_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``up``."""
    up = commands.add_parser(
        "up",
        help="run the kernel and the web tier together",
        description="Start the kernel and the web tier, print the desktop URL, and run until "
        "SIGINT/SIGTERM. As root, the web tier runs as an unprivileged user.",
    )
    add_common_options(up)
    add_web_options(up)
    add_runtime_option(up)
    up.add_argument(
        "--orchestrator-user",
        metavar="USER",
        help="user for the web tier when started as root (env AGENTOS_ORCHESTRATOR_USER; "
        "default 'agentos' if it exists, else 'nobody')",
    )
    up.set_defaults(handler=_up_command)


def _choose_user(requested: str | None) -> WebUser | None:
    """The user to run the web tier as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        if requested is not None and requested != pwd.getpwuid(os.geteuid()).pw_name:
            fail("only root can run the web tier as another user", EXIT_USAGE)
        return None
    names = [requested] if requested else ["agentos", "nobody"]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            logger.warning("the web tier will run as root: the privilege boundary is off")
            return None
        return WebUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
    raise CommandError(f"no such user: {', '.join(names)}", EXIT_USAGE)


def _may(st: os.stat_result, user: WebUser, bits: tuple[int, int, int]) -> bool:
    owner, group, other = bits
    if st.st_uid == user.uid:
        return bool(st.st_mode & owner)
    if st.st_gid == user.gid:
        return bool(st.st_mode & group)
    return bool(st.st_mode & other)


def _check_reachable(path: Path, user: WebUser, *, read: bool = False) -> str | None:
    """Why ``user`` cannot reach (and, if ``read``, read) ``path``, or None if it can."""
    path = path.resolve()
    for directory in reversed([path, *path.parents] if path.is_dir() else list(path.parents)):
        if not _may(directory.stat(), user, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)):
            return f"cannot enter {directory}"
    if read and not _may(path.stat(), user, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)):
        return f"cannot read {path}"
    return None


def _prepare_for(user: WebUser, kernel: KernelSettings, web: OrchestratorSettings) -> None:
    """Give ``user`` its state directory and check it can run this Python and reach the socket."""
    checks = {
        "the Python interpreter": (Path(sys.executable), True),
        "the installed packages": (Path(sysconfig.get_paths()["purelib"]), True),
        "the AgentOS code": (Path(__file__).resolve().parent.parent, True),
        "the kernel socket directory": (kernel.socket_path.parent, False),
    }
    for what, (path, read) in checks.items():
        problem = _check_reachable(path, user, read=read)
        if problem:
            fail(
                f"the web tier runs as user {user.name!r}, which {problem} ({what}). Make it "
                "reachable, choose another --data-dir, or create the venv from a Python "
                "under /usr (make setup does)."
            )
    _give_to(web.state_dir, user)


def _give_to(state: Path, user: WebUser) -> None:
    """Make ``state`` and what it holds ``user``'s, as root, without being steered by it.

    ``user`` owns this directory, so it may have planted links. Directories are walked
    through file descriptors (``os.fwalk`` checks each one it enters is the one it
    listed), owners change with lchown relative to them, and a file with other hard
    links is left alone: it may be someone else's file linked in.
    """
    fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, user.uid, user.gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    for root, dirs, files, dir_fd in os.fwalk(state, follow_symlinks=False):
        for name in (*dirs, *files):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                logger.warning("leaving %s alone: it has other hard links", Path(root, name))
                continue
            os.chown(name, user.uid, user.gid, dir_fd=dir_fd, follow_symlinks=False)


def _child_argv(
    web: OrchestratorSettings, kernel_socket: Path, supervisor_fd: int, log_level: str
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "orchestrator",
        "--data-dir",
        os.fspath(web.data_dir),
        "--kernel-socket",
        os.fspath(kernel_socket),
        "--host",
        web.host,
        "--port",
        str(web.port),
        "--supervisor-fd",
        str(supervisor_fd),
        "--log-level",
        log_level,
    ]
    if web.access_log:
        argv.append("--access-log")
    return argv


async def _read_ready(lifeline: trio.SocketStream) -> dict[str, object] | None:
    """The child's ready message, or None if it closed its end (exited) first."""
    data = b""
    while b"\n" not in data:
        chunk = await lifeline.receive_some(4096)
        if not chunk:
            return None
        data += chunk
    message = json.loads(data.split(b"\n", 1)[0])
    return message if isinstance(message, dict) else None


async def _stop_child(process: trio.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    with trio.move_on_after(_STOP_SECONDS):
        await process.wait()
        return
    logger.warning("the web tier did not stop within %.0f s; killing it", _STOP_SECONDS)
    process.kill()
    await process.wait()


async def _supervise(
    kernel: KernelSettings, web: OrchestratorSettings, user: WebUser | None, log_level: str
) -> int:
    owner = (user.uid, user.gid) if user else None
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(KernelService(kernel, socket_owner=owner).run)
            # The lifeline: the web tier reports ready on it, and sees it close if we die.
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            async with trio.SocketStream(trio.socket.from_stdlib_socket(ours)) as lifeline:
                try:
                    process = await trio.lowlevel.open_process(
                        _child_argv(web, handle.socket, theirs.fileno(), log_level),
                        pass_fds=(theirs.fileno(),),
                        start_new_session=True,  # our signals reach it only through us, in order
                        cwd=web.state_dir,
                        user=user.uid if user else None,
                        group=user.gid if user else None,
                        extra_groups=[] if user else None,
                    )
                finally:
                    theirs.close()
                status = await _run_child(process, lifeline, signals, user, admin_token_hint(web))
            nursery.cancel_scope.cancel()
    return status


async def _race(**contenders: Callable[[], Awaitable[object]]) -> tuple[str, object]:
    """Run the contenders together; return the first to finish (name, value), cancel the rest."""
    winner: tuple[str, object] | None = None
    async with trio.open_nursery() as nursery:

        async def run(name: str, contender: Callable[[], Awaitable[object]]) -> None:
            nonlocal winner
            value = await contender()
            if winner is None:
                winner = (name, value)
            nursery.cancel_scope.cancel()

        for name, contender in contenders.items():
            nursery.start_soon(run, name, contender)
    assert winner is not None
    return winner


async def _next_signal(signals: AsyncIterator[int]) -> int:
    async for signum in signals:  # pragma: no branch - returns on the first signal
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        return signum
    raise AssertionError("signal stream ended")  # pragma: no cover


async def _run_child(
    process: trio.Process,
    lifeline: trio.SocketStream,
    signals: AsyncIterator[int],
    user: WebUser | None,
    token_hint: str,
) -> int:
    """Wait for the web tier to be ready, then for a signal or its exit; stop it."""
    next_signal = functools.partial(_next_signal, signals)
    try:
        with trio.move_on_after(_START_SECONDS):
            event, ready = await _race(
                ready=functools.partial(_read_ready, lifeline), signal=next_signal
            )
            if event == "signal":
                return EXIT_OK
            if isinstance(ready, dict):
                announce(str(ready["desktop_url"]), token_hint)
                logger.info(
                    "AgentOS is up: web tier pid %d%s",
                    process.pid,
                    f" as user {user.name}" if user else "",
                )
                event, _ = await _race(signal=next_signal, exit=process.wait)
                if event == "signal":
                    return EXIT_OK
                logger.error("the web tier exited on its own (status %s)", process.returncode)
                return EXIT_ERROR
        # Not ready in time, or it closed the lifeline: it is failing. Give it a moment to
        # exit by itself so that its own status is the one reported.
        with trio.move_on_after(_EXIT_WAIT_SECONDS):
            await process.wait()
        logger.error("the web tier failed to start (exit status %s)", process.returncode)
        return EXIT_ERROR
    finally:
        with trio.move_on_after(_STOP_SECONDS + 5, shield=True):
            await _stop_child(process)


def _up_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    kernel = build_settings(KernelSettings, data_dir=args.data_dir, runtime=args.runtime)
    web = web_settings(args, kernel_socket=kernel.socket_path)
    up = build_settings(UpSettings, orchestrator_user=args.orchestrator_user)
    user = _choose_user(up.orchestrator_user)
    prepare_data_dir(kernel)
    web.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if user is not None:
        _prepare_for(user, kernel, web)
    return trio.run(functools.partial(_supervise, kernel, web, user, args.log_level))
