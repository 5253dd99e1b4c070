"""``/admin/*``: sandbox policies, the running sandboxes, and the audit log. Admin token only.

Policies live in the kernel (``policy.*``), which validates them again and keeps them;
a change applies to processes spawned after it. Every change and kill is audited, done
or refused, before the answer leaves.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import validate_querystring, validate_request, validate_response

from kernel.client import abi
from orchestrator.audit import AuditEntry, AuditLog
from orchestrator.auth import admin_only
from orchestrator.errors import status_of
from orchestrator.kernel_link import KernelLink
from sandbox.errors import AgentOSError, InvalidArgumentError
from sandbox.policy import Policy

__all__ = ["AuditQuery", "AuditResult", "SandboxEntry", "SandboxList", "admin_routes"]

_POLICY_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_SANDBOX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class SandboxEntry(BaseModel):
    """A process running in a sandbox, with its container's counters now."""

    pid: int
    name: str
    app_id: str | None
    policy: str | None
    state: str
    container: abi.process.ContainerInfo
    stats: abi.process.ProcStatsResult | None = Field(description="None if it ended meanwhile")


class SandboxList(BaseModel):
    """``GET /admin/sandboxes``."""

    sandboxes: list[SandboxEntry]


class AuditQuery(BaseModel):
    """Query of ``GET /admin/audit``."""

    limit: int = Field(default=100, ge=1, le=10_000)


class AuditResult(BaseModel):
    """``GET /admin/audit``: the latest entries, oldest first."""

    entries: list[AuditEntry]


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        msg = f"not a {what}: {value!r}"
        raise InvalidArgumentError(msg)
    return value


@contextlib.asynccontextmanager
async def _audited(
    audit: AuditLog, action: str, target: str, details: dict[str, Any] | None = None
) -> AsyncIterator[None]:
    """Record the action the block does, done or refused (with its error code)."""
    client = request.remote_addr or "-"
    try:
        yield
    except AgentOSError as exc:
        await audit.record(action, target, status_of(exc)[1], client=client, details=details)
        raise
    await audit.record(action, target, "ok", client=client, details=details)


def admin_routes(link: KernelLink, audit: AuditLog) -> Blueprint:
    """The admin routes, bound to this server's kernel link and audit log."""
    routes = Blueprint("admin", __name__, url_prefix="/admin")
    _policy_routes(routes, link, audit)
    _sandbox_routes(routes, link, audit)

    @routes.get("/audit")
    @admin_only
    @validate_querystring(AuditQuery)
    @validate_response(AuditResult)
    async def audit_log(query_args: AuditQuery) -> AuditResult:
        """The latest admin actions, oldest first."""
        return AuditResult(entries=await audit.latest(query_args.limit))

    return routes


def _policy_routes(routes: Blueprint, link: KernelLink, audit: AuditLog) -> None:
    @routes.get("/policies")
    @admin_only
    @validate_response(abi.policy.PolicyListResult)
    async def list_policies() -> abi.policy.PolicyListResult:
        """Every policy: the built-ins, then the administrators' own."""
        return await link.invoke(abi.policy.POLICY_LIST)

    @routes.get("/policies/<name>")
    @admin_only
    @validate_response(abi.policy.PolicyEntry)
    async def get_policy(name: str) -> abi.policy.PolicyEntry:
        """One policy."""
        args = abi.policy.PolicyNameArgs(name=_checked(_POLICY_NAME, name, "policy name"))
        return await link.invoke(abi.policy.POLICY_GET, args)

    @routes.post("/policies")
    @admin_only
    @validate_request(Policy)
    @validate_response(abi.policy.PolicyEntry, 201)
    async def create_policy(data: Policy) -> tuple[abi.policy.PolicyEntry, int]:
        """A new policy (409 if the name is taken); new processes may use it at once."""
        document = data.model_dump(mode="json")
        async with _audited(audit, "policy.create", data.name, {"policy": document}):
            args = abi.policy.PolicyPutArgs(policy=document, create_only=True)
            result = await link.invoke(abi.policy.POLICY_PUT, args)
        return result.entry, 201

    @routes.put("/policies/<name>")
    @admin_only
    @validate_request(Policy)
    @validate_response(abi.policy.PolicyEntry, 200)
    @validate_response(abi.policy.PolicyEntry, 201)
    async def put_policy(name: str, data: Policy) -> tuple[abi.policy.PolicyEntry, int]:
        """Replace a policy, or create it (201); running processes keep the old one."""
        _checked(_POLICY_NAME, name, "policy name")
        if data.name != name:
            msg = f"the body names policy {data.name!r}, the path {name!r}"
            raise InvalidArgumentError(msg)
        document = data.model_dump(mode="json")
        async with _audited(audit, "policy.put", name, {"policy": document}):
            args = abi.policy.PolicyPutArgs(policy=document)
            result = await link.invoke(abi.policy.POLICY_PUT, args)
        return result.entry, 201 if result.created else 200

    @routes.delete("/policies/<name>")
    @admin_only
    @validate_response(abi.policy.PolicyEntry)
    async def delete_policy(name: str) -> abi.policy.PolicyEntry:
        """Delete a policy no running process uses (409 while one does)."""
        args = abi.policy.PolicyNameArgs(name=_checked(_POLICY_NAME, name, "policy name"))
        async with _audited(audit, "policy.delete", name):
            return await link.invoke(abi.policy.POLICY_DELETE, args)


async def _sandboxes(link: KernelLink) -> list[SandboxEntry]:
    """The running sandboxes, with their counters now."""
    listing = await link.invoke(abi.process.PROC_LIST)
    entries = []
    for process in listing.processes:
        if process.container is None or process.state is abi.process.ProcessState.EXITED:
            continue
        stats: abi.process.ProcStatsResult | None
        try:
            stats = await link.invoke(
                abi.process.PROC_STATS, abi.process.ProcPidArgs(pid=process.pid)
            )
        except abi.SyscallNotFoundError:  # ended meanwhile
            stats = None
        entries.append(
            SandboxEntry(
                pid=process.pid,
                name=process.name,
                app_id=process.app_id,
                policy=process.policy,
                state=process.state.value,
                container=process.container,
                stats=stats,
            )
        )
    return entries


def _sandbox_routes(routes: Blueprint, link: KernelLink, audit: AuditLog) -> None:
    @routes.get("/sandboxes")
    @admin_only
    @validate_response(SandboxList)
    async def list_sandboxes() -> SandboxList:
        """Every running sandbox, with its memory, CPU and task counts now."""
        return SandboxList(sandboxes=await _sandboxes(link))

    @routes.delete("/sandboxes/<sandbox_id>")
    @admin_only
    @validate_response(abi.process.ProcessInfo)
    async def kill_sandbox(sandbox_id: str) -> abi.process.ProcessInfo:
        """Kill the process running in a sandbox (and so the sandbox)."""
        _checked(_SANDBOX_ID, sandbox_id, "sandbox id")
        async with _audited(audit, "sandbox.kill", sandbox_id):
            for entry in await _sandboxes(link):
                if entry.container.id == sandbox_id:
                    return await link.invoke(
                        abi.process.PROC_KILL, abi.process.ProcPidArgs(pid=entry.pid)
                    )
            msg = f"no running sandbox {sandbox_id}"
            raise abi.SyscallNotFoundError(msg, code=abi.ErrorCode.ESRCH)
