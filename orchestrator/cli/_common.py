"""What every ``agentos`` command shares: logging, exit codes, settings, JSON output."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pydantic
from pydantic_settings import BaseSettings

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandError",
    "add_common_options",
    "build_settings",
    "configure_logging",
    "dump_json",
    "fail",
    "single_leaf",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE: the kernel is not running

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

_LOG_LEVELS = ("debug", "info", "warning", "error")


class CommandError(Exception):
    """A failure to report as one line on stderr, with an exit status; never a traceback."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


def single_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside a (nested) exception group, if it holds exactly one."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else None


def fail(message: str, status: int = EXIT_ERROR) -> NoReturn:
    """Stop the command with ``message`` and ``status``."""
    raise CommandError(message, status)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every command takes: the data directory and the log level."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="state and sockets (env AGENTOS_DATA_DIR; default /var/lib/agentos for root, "
        "else the platform's user data directory)",
    )
    parser.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default=os.environ.get("AGENTOS_LOG_LEVEL", "info").lower(),
        help="log verbosity (env AGENTOS_LOG_LEVEL; default %(default)s)",
    )


def configure_logging(level: str) -> None:
    """Log to stderr in one format for every tier."""
    if level not in _LOG_LEVELS:
        fail(f"invalid log level {level!r} (choose from {', '.join(_LOG_LEVELS)})", EXIT_USAGE)
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def build_settings(
    cls: type[SettingsT], *, flag_names: Mapping[str, str] | None = None, **flags: Any
) -> SettingsT:
    """Settings from the flags that were given, then the environment, then defaults.

    Args:
        cls: the settings model.
        flag_names: the flag of a field when it is not ``--field-name``.
        flags: each field this command has a flag for, with the flag's value (None: not
            given). Errors name the flag for these fields, and only the variable for others.
    """
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return cls(**given)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            if not error["loc"]:
                problems.append(message)
                continue
            field = str(error["loc"][0])
            variable = f"AGENTOS_{field.upper()}"
            if field in flags:
                flag = (flag_names or {}).get(field, f"--{field.replace('_', '-')}")
                problems.append(f"{flag} or {variable}: {message}")
            else:
                problems.append(f"{variable}: {message}")
        fail(f"invalid configuration: {'; '.join(problems)}", EXIT_USAGE)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    msg = f"cannot show {type(value).__name__} as JSON"
    raise TypeError(msg)


def dump_json(value: Any, *, compact: bool = False) -> str:
    """JSON for output: indented unless ``compact``; bytes become ``{"$base64": ...}``."""
    if compact:
        return json.dumps(value, default=_jsonable, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value, default=_jsonable, indent=2, ensure_ascii=False)
