"""``proc.*``: run a command in the app's own sandbox and collect what it prints.

The command runs in the container of the app's top process, as that process (which
needs ``spawn_process``: a terminal's policy grants it, the standard one does not), under
its policy's limits. Output is collected up to 1 MiB per stream; the desktop's terminal
streams it instead over the WebSocket.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from orchestrator.services._registry import Params, Service, ServiceContext, Tool

__all__ = ["MAX_COLLECTED_BYTES", "proc_service"]

MAX_COLLECTED_BYTES = 1 << 20


class _Exec(Params):
    command: list[str] = Field(
        min_length=1, max_length=256, description="argv: the program, then its arguments"
    )
    stdin: str = Field(default="", max_length=1 << 20, description="given, then EOF")
    timeout: float = Field(default=30.0, gt=0, le=300, description="seconds")
    cwd: str | None = Field(default=None, max_length=4096, description="inside the sandbox")


async def _exec(ctx: ServiceContext, params: _Exec) -> Any:
    outputs = {"stdout": bytearray(), "stderr": bytearray()}
    truncated = False
    command: dict[str, Any] = {"argv": params.command}
    if params.cwd is not None:
        command["cwd"] = params.cwd
    args = {
        "pid": ctx.pid, "command": command, "stdin": params.stdin.encode(),
        "timeout": params.timeout,
    }  # fmt: skip
    async with ctx.link.stream("proc.exec", args, as_pid=ctx.pid) as stream:
        async for item in stream:
            kept = outputs[item["stream"]]
            room = MAX_COLLECTED_BYTES - len(kept)
            truncated |= len(item["data"]) > room
            kept.extend(item["data"][: max(room, 0)])
        result = stream.result
    return {
        **result,
        "stdout": outputs["stdout"].decode(errors="replace"),
        "stderr": outputs["stderr"].decode(errors="replace"),
        "truncated": truncated or bool(result.get("dropped_bytes")),
    }


def proc_service() -> Service:
    """The ``proc`` service."""
    return Service(
        id="proc", name="Processes", category="system",
        description="Run a command in the app's own sandbox and read what it prints.",
        capabilities=("spawn_process",),
        tools=(
            Tool("proc.exec", "Run a command in the app's sandbox; its status and output.",
                 _Exec, "{exit_code, term_signal, timed_out, stdout, stderr, truncated}", _exec),
        ),
    )  # fmt: skip
