"""``agentos kernel`` and ``agentos orchestrator``: one tier each, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from kernel.config import KernelSettings
from kernel.service import KernelService
from orchestrator.cli._common import add_common_options, build_settings, configure_logging
from orchestrator.config import OrchestratorSettings
from orchestrator.service import OrchestratorHandle, OrchestratorService

__all__ = ["add_tier_commands", "admin_token_hint", "announce", "run_orchestrator_tier"]

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
    kernel.set_defaults(handler=_kernel_command)

    web = commands.add_parser(
        "orchestrator",
        help="run the web tier alone",
        description="Run the HTTP/WebSocket API and desktop against a running kernel.",
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
    web.add_argument("--ready-fd", type=int, metavar="FD", help=argparse.SUPPRESS)
    web.set_defaults(handler=_orchestrator_command)


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


def announce(desktop_url: str, admin_token_hint: str) -> None:
    """Print where the desktop is, like Jupyter does."""
    print(f"AgentOS desktop: {desktop_url}", flush=True)  # noqa: T201 - the CLI's output
    print(f"Admin token: {admin_token_hint}", flush=True)  # noqa: T201


async def _until_signalled(signals: AsyncIterator[int]) -> None:
    async for signum in signals:  # pragma: no branch - returns on the first signal
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        return


def _kernel_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    settings = build_settings(KernelSettings, data_dir=args.data_dir, kernel_socket=args.socket)

    async def main() -> None:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(KernelService(settings).run)
                await _until_signalled(signals)
                nursery.cancel_scope.cancel()

    trio.run(main)
    return 0


def admin_token_hint(settings: OrchestratorSettings) -> str:
    """Where the admin token comes from, for the start-up banner."""
    if settings.admin_token is not None:
        return "from AGENTOS_ADMIN_TOKEN"
    return f"in {settings.state_dir / 'admin-token'}"


async def run_orchestrator_tier(settings: OrchestratorSettings, *, ready_fd: int | None) -> None:
    """Serve the web tier until a stop signal, then shut down gracefully.

    With ``ready_fd`` (``agentos up`` passes one), write one JSON line there once serving,
    instead of printing the desktop URL.
    """
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            service = OrchestratorService(settings)
            handle: OrchestratorHandle = await nursery.start(service.run)
            if ready_fd is None:
                announce(handle.desktop_url, admin_token_hint(settings))
            else:
                message = {"urls": handle.urls, "desktop_url": handle.desktop_url}
                with os.fdopen(ready_fd, "w") as ready:
                    ready.write(json.dumps(message) + "\n")
            await _until_signalled(signals)
            service.shutdown()
            nursery.cancel_scope.deadline = trio.current_time() + _GRACE_SECONDS


def _orchestrator_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    settings = build_settings(
        OrchestratorSettings,
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        kernel_socket=args.kernel_socket,
        access_log=args.access_log,
    )
    trio.run(functools.partial(run_orchestrator_tier, settings, ready_fd=args.ready_fd))
    return 0
