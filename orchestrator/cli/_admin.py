"""``agentos call``, ``ps`` and ``kill``: talk to a running kernel over its admin socket.

The socket is found through the data directory (``--data-dir`` or AGENTOS_DATA_DIR):
the one the running kernel recorded in ``run/kernel.json``, else the default path.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import trio

from kernel.client import (
    KernelClient,
    KernelLocation,
    abi,
    locate_admin_socket,
    open_kernel_client,
)
from orchestrator.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    add_common_options,
    build_settings,
    configure_logging,
    dump_json,
    fail,
)

__all__ = ["add_admin_commands"]


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    add_common_options(parser)
    parser.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help="the admin socket (env AGENTOS_KERNEL_SOCKET; default: found via the data dir)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="give up after this long (default %(default)s)",
    )


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``call``, ``ps``, ``kill`` and ``logs``."""
    call = commands.add_parser(
        "call",
        help="make a syscall and print the reply as JSON",
        description="Make one syscall on the running kernel's admin socket and print its "
        "result as JSON (streamed items first, one per line). `agentos call sys.calls` "
        "lists every call with its arguments.",
        epilog="example: agentos call proc.info '{\"pid\": 1}'",
    )
    _add_connection_options(call)
    call.add_argument("syscall", metavar="SYSCALL", help="the call's name, e.g. sys.info")
    call.add_argument(
        "args",
        metavar="JSON_ARGS",
        nargs="?",
        default="{}",
        help="the arguments as a JSON object (default {})",
    )
    call.add_argument("--compact", action="store_true", help="one-line JSON")
    call.set_defaults(handler=_call_command)

    ps = commands.add_parser(
        "ps", help="list kernel processes", description="List the kernel's live processes."
    )
    _add_connection_options(ps)
    ps.add_argument("--json", action="store_true", help="print the list as JSON")
    ps.set_defaults(handler=_ps_command)

    kill = commands.add_parser(
        "kill",
        help="kill a kernel process (and its children, unless detached)",
        description="Kill a kernel process and its children that were not spawned detached.",
    )
    _add_connection_options(kill)
    kill.add_argument("pid", type=int, metavar="PID", help="kernel pid (see `agentos ps`)")
    kill.add_argument("--json", action="store_true", help="print the final state as JSON")
    kill.set_defaults(handler=_kill_command)

    logs = commands.add_parser(
        "logs",
        help="print a kernel process's output",
        description="Print the recent output of a process's command (the kernel keeps the "
        "last 64 KiB): its stdout to stdout, its stderr to stderr.",
        epilog="example: agentos logs --follow 3",
    )
    _add_connection_options(logs)
    logs.add_argument("pid", type=int, metavar="PID", help="kernel pid (see `agentos ps`)")
    logs.add_argument(
        "-f", "--follow", action="store_true",
        help="then print what it writes next, until it ends (no --timeout)",
    )  # fmt: skip
    logs.add_argument(
        "--json", action="store_true", help="one JSON object per chunk, then the summary"
    )
    logs.set_defaults(handler=_logs_command)


def _socket_of(args: argparse.Namespace) -> Path:
    settings = build_settings(
        KernelLocation,
        flag_names={"kernel_socket": "--socket"},
        data_dir=args.data_dir,
        kernel_socket=args.socket,
    )
    return settings.kernel_socket or locate_admin_socket(settings.data_dir)


def _with_kernel(
    args: argparse.Namespace,
    work: Callable[[KernelClient], Awaitable[int]],
    *,
    bounded: bool = True,
) -> int:
    """Connect, run ``work``, and turn kernel errors into messages and exit statuses.

    ``--timeout`` bounds the connection, and the work too if ``bounded``.
    """
    configure_logging(args.log_level)
    socket = _socket_of(args)

    async def main() -> int:
        with trio.fail_after(args.timeout) as deadline:
            async with open_kernel_client(socket, connect_timeout=args.timeout) as client:
                if not bounded:
                    deadline.deadline = math.inf
                return await work(client)

    try:
        return trio.run(main)
    except abi.SyscallUnavailableError as exc:
        fail(f"{exc.message}; is `agentos up` running for this data directory?", EXIT_UNAVAILABLE)
    except abi.SyscallError as exc:
        lines = [f"{exc.code}: {exc.message}"]
        lines += [f"  {d.get('loc', '')}: {d.get('msg', '')}" for d in exc.details]
        fail("\n".join(lines), EXIT_ERROR)
    except trio.TooSlowError:
        fail(f"no reply from the kernel within {args.timeout} s", EXIT_ERROR)


def _parse_args_json(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"JSON_ARGS is not valid JSON: {exc}", EXIT_USAGE)
    if not isinstance(value, dict):
        fail(f"JSON_ARGS must be a JSON object, not {type(value).__name__}", EXIT_USAGE)
    return value


def _call_command(args: argparse.Namespace) -> int:
    call_args = _parse_args_json(args.args)

    async def work(client: KernelClient) -> int:
        async with client.stream(args.syscall, call_args) as items:
            async for item in items:
                sys.stdout.write(dump_json(item, compact=True) + "\n")
                sys.stdout.flush()
            sys.stdout.write(dump_json(items.result, compact=args.compact) + "\n")
        return EXIT_OK

    return _with_kernel(args, work)


def _when(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def _ps_command(args: argparse.Namespace) -> int:
    async def work(client: KernelClient) -> int:
        result = await client.invoke(abi.process.PROC_LIST)
        if args.json:
            sys.stdout.write(dump_json([p.to_wire() for p in result.processes]) + "\n")
            return EXIT_OK
        rows = [("PID", "PPID", "STATE", "STARTED", "APP", "NAME", "CONTAINER", "CAPABILITIES")]
        rows += [
            (
                str(p.pid),
                str(p.ppid),
                p.state,
                _when(p.created_at),
                p.app_id or "-",
                p.name,
                f"{p.container.id} ({p.container.runtime}, {p.policy})" if p.container else "-",
                ",".join(map(str, p.capabilities)) or "-",
            )
            for p in result.processes
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            sys.stdout.write("  ".join([*cells, row[-1]]) + "\n")
        return EXIT_OK

    return _with_kernel(args, work)


def _kill_command(args: argparse.Namespace) -> int:
    async def work(client: KernelClient) -> int:
        final = await client.invoke(abi.process.PROC_KILL, abi.process.ProcPidArgs(pid=args.pid))
        if args.json:
            sys.stdout.write(dump_json(final.to_wire()) + "\n")
        else:
            sys.stdout.write(f"killed {final.pid} ({final.name})\n")
        return EXIT_OK

    if args.pid < 1:
        fail("PID must be a positive kernel pid", EXIT_USAGE)
    return _with_kernel(args, work)


def _logs_command(args: argparse.Namespace) -> int:
    async def work(client: KernelClient) -> int:
        request = {"pid": args.pid, "follow": args.follow}
        async with client.stream(abi.process.PROC_OUTPUT.name, request) as chunks:
            async for raw in chunks:
                chunk = abi.process.OutputItem.model_validate(raw)
                if args.json:
                    line = {**chunk.to_wire(), "data": chunk.data.decode(errors="replace")}
                    sys.stdout.write(dump_json(line, compact=True) + "\n")
                    sys.stdout.flush()
                    continue
                out = sys.stdout if chunk.stream is abi.process.OutputStream.STDOUT else sys.stderr
                out.buffer.write(chunk.data)
                out.buffer.flush()
            if args.json:
                sys.stdout.write(dump_json(chunks.result, compact=True) + "\n")
        return EXIT_OK

    if args.pid < 1:
        fail("PID must be a positive kernel pid", EXIT_USAGE)
    return _with_kernel(args, work, bounded=not args.follow)
