"""``agentos sandbox run``: one command in a fresh sandbox, like ``docker run --rm``.

No daemon needed: the command builds the container itself (as root), streams the
command's output, and exits with the command's status: 137 when it was killed (memory
limit, time limit), 128 + signal for other signals. Like ``docker run``, its own
failures exit 125, a command that cannot run 126, one that does not exist 127.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pydantic
import trio

from kernel.client import KernelLocation
from orchestrator.cli._common import (
    EXIT_USAGE,
    add_common_options,
    build_settings,
    configure_logging,
    fail,
    single_leaf,
)
from orchestrator.cli._tiers import STOP_SIGNALS
from sandbox.errors import AgentOSError
from sandbox.oci.spec import ProcessSpec
from sandbox.policy import BUILTIN_POLICIES, DEFAULT_POLICY, NetworkMode, Policy, RuntimeName
from sandbox.run import RunResult, run_in_sandbox
from sandbox.runtime import RuntimeFailedError, open_runtime

__all__ = ["add_sandbox_command"]

EXIT_SANDBOX_FAILED = 125
EXIT_CANNOT_RUN = 126
EXIT_NOT_FOUND = 127


def add_sandbox_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sandbox run``."""
    sandbox = commands.add_parser("sandbox", help="run commands in sandboxes")
    verbs = sandbox.add_subparsers(dest="verb", metavar="VERB", required=True)
    run = verbs.add_parser(
        "run",
        help="run one command in a fresh sandbox",
        description="Run CMD in a fresh sandbox and remove it afterwards, like "
        "`docker run --rm`: output streams as it comes; the exit status is CMD's "
        "(137 when killed at a limit). Needs root.",
        epilog="example: agentos sandbox run --memory 64M --timeout 10s -- python3 -c 'print(1)'",
    )
    add_common_options(run)
    run.set_defaults(log_level=os.environ.get("AGENTOS_LOG_LEVEL", "warning").lower())
    run.add_argument(
        "--policy", default=DEFAULT_POLICY, choices=sorted(BUILTIN_POLICIES),
        help="the policy to start from (default %(default)s)",
    )  # fmt: skip
    run.add_argument("--memory", metavar="SIZE", help="memory limit, e.g. 256M")
    run.add_argument("--cpus", type=float, metavar="N", help="CPU time in CPUs, e.g. 0.5")
    run.add_argument("--pids", type=int, metavar="N", help="most tasks at once")
    run.add_argument("--disk", metavar="SIZE", help="size of /data, e.g. 64M")
    run.add_argument(
        "--network", choices=[m.value for m in NetworkMode if m is not NetworkMode.ALLOWLIST],
        help="network mode (default: the policy's)",
    )  # fmt: skip
    run.add_argument("--timeout", metavar="DURATION", help="wall-clock limit, e.g. 30s")
    run.add_argument(
        "--runtime", choices=[r.value for r in RuntimeName], default=None,
        help="container runtime (default: the policy's, auto)",
    )  # fmt: skip
    run.add_argument("-i", "--interactive", action="store_true", help="pass stdin to CMD")
    run.add_argument("--json", action="store_true", help="print a JSON result as the last line")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")
    run.set_defaults(handler=_run_command)


def _policy(args: argparse.Namespace) -> Policy:
    base = BUILTIN_POLICIES[args.policy]
    document = base.model_dump()
    limits = document["limits"]
    for option, field in (("memory", "memory"), ("cpus", "cpus"), ("pids", "pids"),
                          ("disk", "disk"), ("timeout", "timeout")):  # fmt: skip
        value = getattr(args, option)
        if value is not None:
            limits[field] = value
    if args.network is not None:
        document["network"] = {"mode": args.network}
    if args.runtime is not None:
        document["runtime"] = args.runtime
    try:
        return Policy.model_validate(document)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"--{e['loc'][-1]}: {e['msg'].removeprefix('Value error, ')}" if e["loc"] else e["msg"]
            for e in exc.errors(include_url=False)
        )
        fail(f"invalid option: {problems}", EXIT_USAGE)


def _command(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        fail("no command given: agentos sandbox run [OPTIONS] -- CMD [ARG...]", EXIT_USAGE)
    return command


async def _write(fd: int, data: bytes) -> None:
    await trio.to_thread.run_sync(os.write, fd, data)  # stdio may block; never stall trio


async def _run(
    args: argparse.Namespace, command: Sequence[str], policy: Policy, data_dir: Path
) -> int:
    runtime = open_runtime(policy.runtime, data_dir / "sandbox")
    result: RunResult | None = None
    interrupted: int | None = None
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                nonlocal interrupted
                async for signum in signals:  # pragma: no branch
                    interrupted = signum
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(on_signal)
            result = await run_in_sandbox(
                runtime,
                ProcessSpec(argv=command),
                policy,
                stdout=functools.partial(_write, 1),
                stderr=functools.partial(_write, 2),
                stdin=0 if args.interactive else None,
            )
            nursery.cancel_scope.cancel()
    if interrupted is not None:
        return 128 + interrupted
    assert result is not None
    if args.json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        sys.stdout.flush()
    return result.exit_code


def _run_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    command = _command(args)
    policy = _policy(args)
    data_dir = build_settings(KernelLocation, data_dir=args.data_dir).data_dir
    try:
        try:
            return trio.run(_run, args, command, policy, data_dir)
        except BaseExceptionGroup as group:
            leaf = single_leaf(group)
            if isinstance(leaf, AgentOSError):
                raise leaf from None
            raise
    except RuntimeFailedError as exc:
        message = str(exc)
        if "executable file not found" in message or "no such file or directory" in message:
            fail(f"{command[0]}: command not found in the sandbox ({message})", EXIT_NOT_FOUND)
        if "permission denied" in message:
            fail(f"{command[0]}: cannot run it in the sandbox ({message})", EXIT_CANNOT_RUN)
        fail(f"the sandbox failed: {message}", EXIT_SANDBOX_FAILED)
    except AgentOSError as exc:
        fail(f"the sandbox failed: {exc}", EXIT_SANDBOX_FAILED)
