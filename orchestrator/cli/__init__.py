"""The ``agentos`` command: the composition root that starts and talks to every tier.

This is the one part of the orchestrator allowed to import the kernel's implementation
(to run it for ``agentos up`` and ``agentos kernel``); everything else reaches the kernel
through ``kernel.client``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orchestrator.cli._admin import add_admin_commands
from orchestrator.cli._common import EXIT_ERROR, CommandError, single_leaf
from orchestrator.cli._sandbox import add_sandbox_command
from orchestrator.cli._tiers import add_tier_commands
from orchestrator.cli._up import add_up_command
from sandbox import installed_version
from sandbox.errors import AgentOSError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="agentos",
        description="AgentOS: a userspace microkernel for AI-generated apps.",
        epilog="exit status: 0 success, 1 failure, 2 usage or configuration error, "
        "69 kernel not reachable. Every option also reads an AGENTOS_* environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"agentos {installed_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_up_command(commands)
    add_tier_commands(commands)
    add_admin_commands(commands)
    add_sandbox_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``agentos``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        try:
            return int(args.handler(args))
        except BaseExceptionGroup as group:
            leaf = single_leaf(group)
            if isinstance(leaf, CommandError | AgentOSError | OSError | KeyboardInterrupt):
                raise leaf from None
            raise
    except CommandError as exc:
        print(f"agentos: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's output
        return exc.status
    except AgentOSError as exc:
        print(f"agentos: error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_ERROR
    except OSError as exc:  # the system said no: a port in use, a directory we cannot make
        print(f"agentos: error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130  # as shells report a SIGINT death
