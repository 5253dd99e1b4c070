"""``agentos kernel`` and ``agentos orchestrator``: one tier each, until SIGINT or SIGTERM.

Started by ``agentos up``, the web tier gets ``--supervisor-fd``: one end of a socket pair
whose other end ``up`` holds. The web tier sends its ready message on it, then watches
it: end of file means ``up`` is gone, however it died, and the web tier shuts down
rather than serve on without a kernel.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from kernel.config import KernelSettings
from kernel.service import KernelService
from orchestrator.cli._common import add_common_options, build_settings, configure_logging
from orchestrator.config import OrchestratorSettings
from orchestrator.service import OrchestratorHandle, OrchestratorService
from sandbox.policy import RuntimeName

__all__ = [
    "STOP_SIGNALS",
    "add_runtime_option",
    "add_tier_commands",
    "add_web_options",
    "admin_token_hint",
    "announce",
    "run_orchestrator_tier",
    "web_settings",
]

logger = logging.getLogger("agentos.cli")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_GRACE_SECONDS = 10.0


def add_tier_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``kernel`` and ``orchestrator``."""
    kernel = commands.add_parser(
        "kernel",
        help="run the kernel alone",
        description="Run the kernel daemon alone, serving its admin socket until SIGINT/SIGTERM.",
    )
    add_common_options(kernel)
    kernel.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help="admin socket path (env AGENTOS_KERNEL_SOCKET; default DATA_DIR/run/kernel.sock)",
    )
    add_runtime_option(kernel)
    kernel.set_defaults(handler=_kernel_command)

    web = commands.add_parser(
        "orchestrator",
        help="run the web tier alone",
        description="Run the HTTP API and desktop against a running kernel.",
    )
    add_common_options(web)
    add_web_options(web)
    web.add_argument(
        "--kernel-socket",
        type=Path,
        metavar="PATH",
        help="the kernel's admin socket (env AGENTOS_KERNEL_SOCKET; default: the socket of "
        "the kernel running for the data directory)",
    )
    web.add_argument("--supervisor-fd", type=int, metavar="FD", help=argparse.SUPPRESS)
    web.set_defaults(handler=_orchestrator_command)


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    """The kernel's container runtime, shared by ``kernel`` and ``up``."""
    parser.add_argument(
        "--runtime",
        choices=[r.value for r in RuntimeName],
        help="container runtime for processes with a command (env AGENTOS_RUNTIME; default "
        "auto: runc, else crun, else docker)",
    )


def add_web_options(parser: argparse.ArgumentParser) -> None:
    """Options of the web tier, shared by ``orchestrator`` and ``up``."""
    parser.add_argument("--host", help="address to listen on (env AGENTOS_HOST; default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        help="port to listen on, 0 for any free one (env AGENTOS_PORT; default 8000)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log every HTTP request (env AGENTOS_ACCESS_LOG)",
    )


def web_settings(args: argparse.Namespace, *, kernel_socket: Path | None) -> OrchestratorSettings:
    """The web tier's settings from the options of :func:`add_web_options`."""
    return build_settings(
        OrchestratorSettings,
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        kernel_socket=kernel_socket,
        access_log=args.access_log,
    )


def announce(desktop_url: str, admin_token_hint: str) -> None:
    """Print where the desktop is, like Jupyter does."""
    print(f"AgentOS desktop: {desktop_url}", flush=True)  # noqa: T201 - the CLI's output
    print(f"Admin token: {admin_token_hint}", flush=True)  # noqa: T201


def admin_token_hint(settings: OrchestratorSettings) -> str:
    """Where the admin token comes from, for the start-up banner."""
    if settings.admin_token is not None:
        return "from AGENTOS_ADMIN_TOKEN"
    return f"in {settings.state_dir / 'admin-token'}"


async def _until_stopped(signals: AsyncIterator[int], lifeline: trio.SocketStream | None) -> None:
    """Return on the first stop signal, or when the supervisor's end of ``lifeline`` closes."""
    async with trio.open_nursery() as race:

        async def on_signal() -> None:
            async for signum in signals:  # pragma: no branch - returns on the first signal
                logger.info("received %s; shutting down", signal.Signals(signum).name)
                race.cancel_scope.cancel()
                return

        async def on_orphaned(stream: trio.SocketStream) -> None:
            try:
                while await stream.receive_some(1024):
                    pass
            except trio.BrokenResourceError:
                pass
            logger.warning("the supervising `agentos up` is gone; shutting down")
            race.cancel_scope.cancel()

        race.start_soon(on_signal)
        if lifeline is not None:
            race.start_soon(on_orphaned, lifeline)


def _kernel_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    settings = build_settings(
        KernelSettings,
        flag_names={"kernel_socket": "--socket"},
        data_dir=args.data_dir,
        kernel_socket=args.socket,
        runtime=args.runtime,
    )

    async def main() -> None:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(KernelService(settings).run)
                await _until_stopped(signals, None)
                nursery.cancel_scope.cancel()

    trio.run(main)
    return 0


async def run_orchestrator_tier(
    settings: OrchestratorSettings, *, supervisor_fd: int | None
) -> None:
    """Serve the web tier until a stop signal (or its supervisor's end), then shut down.

    Without a supervisor, print the desktop URL; with one, send it a JSON ready line.
    """
    lifeline = None
    if supervisor_fd is not None:
        lifeline = trio.SocketStream(
            trio.socket.from_stdlib_socket(socket.socket(fileno=supervisor_fd))
        )
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            service = OrchestratorService(settings)
            handle: OrchestratorHandle = await nursery.start(service.run)
            if lifeline is None:
                announce(handle.desktop_url, admin_token_hint(settings))
            else:
                message = {"urls": handle.urls, "desktop_url": handle.desktop_url}
                await lifeline.send_all(json.dumps(message).encode() + b"\n")
            await _until_stopped(signals, lifeline)
            service.shutdown()
            nursery.cancel_scope.deadline = trio.current_time() + _GRACE_SECONDS
    if lifeline is not None:
        await lifeline.aclose()


def _orchestrator_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    settings = web_settings(args, kernel_socket=args.kernel_socket)
    trio.run(functools.partial(run_orchestrator_tier, settings, supervisor_fd=args.supervisor_fd))
    return 0
