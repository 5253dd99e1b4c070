"""Binding handlers to call specs, and dispatching one request: look up, check, validate, run."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeVar

import pydantic

from kernel.abi import (
    CallSpec,
    Catalog,
    ErrorCode,
    Request,
    SyscallError,
    SyscallInvalidArgumentError,
    SyscallPermissionError,
    SyscallUnsupportedError,
    WireModel,
    error_code,
)
from kernel.abi.events import EventKind
from kernel.events import EventBus
from kernel.metrics import KernelMetrics
from sandbox.capabilities import Capability, Grant
from sandbox.errors import describe_invalid

__all__ = ["OWNERSHIP", "UNKNOWN_CALL", "CallContext", "CallTable", "Caller", "Handler"]

logger = logging.getLogger("agentos.kernel.calls")

ArgsT = TypeVar("ArgsT", bound=WireModel)
ResultT = TypeVar("ResultT", bound=WireModel)

UNKNOWN_CALL = "unknown"
"""The metrics label of calls not in the catalog (clients must not mint label values)."""

OWNERSHIP = "ownership"
"""The capability label of denials a handler decides: the caller holds the call's
capability but not the right to this object (not its process) or these arguments
(granting capabilities it lacks)."""

_CANCELLED = "cancelled"
_DENIAL_CODES = frozenset({ErrorCode.EPERM, ErrorCode.EACCES})


@dataclass(frozen=True)
class Caller:
    """Who a call comes from and what it may do.

    Attributes:
        pid: the kernel pid the call acts as (0: the kernel itself, for the admin socket).
        uid: the peer's OS uid, from SO_PEERCRED.
        os_pid: the peer's OS pid, from SO_PEERCRED.
        capabilities: what the caller holds; None means every capability (admin).
    """

    pid: int
    uid: int
    os_pid: int
    capabilities: frozenset[Grant] | None

    def holds(self, capability: Capability) -> bool:
        """Whether the caller may make calls that need ``capability`` (somewhere)."""
        if self.capabilities is None:
            return True
        return any(grant.capability is capability for grant in self.capabilities)

    def may(self, capability: Capability, path: PurePosixPath) -> bool:
        """Whether the caller may use ``capability`` on ``path`` (absolute, normalised).

        Calls that take a path check it here, after the call-level :meth:`holds`.
        """
        if self.capabilities is None:
            return True
        return any(grant.allows(capability, path) for grant in self.capabilities)


ActAs = Callable[[Caller, int, str], Caller]
"""How a caller becomes the process a request names with ``as_pid``: the caller for
that request, or SyscallPermissionError / SyscallNotFoundError."""


def own_pid_only(caller: Caller, pid: int, call: str) -> Caller:
    """A process's own socket: ``as_pid`` may only name the process itself."""
    if pid != caller.pid:
        msg = f"this socket acts for process {caller.pid} alone, not {pid}"
        raise SyscallPermissionError(msg, call=call)
    return caller


Emit = Callable[[WireModel], Awaitable[None]]


@dataclass(frozen=True)
class CallContext:
    """What a handler knows about the call it serves."""

    caller: Caller
    spec: CallSpec[Any, Any]
    _emit: Emit | None = None
    cancel_request: Callable[[int], bool] | None = None
    """Cancel another request in flight on the caller's connection (None: no connection)."""
    send_fd: Callable[[int], None] | None = None
    """Hand a descriptor to the caller with the final reply (SCM_RIGHTS); the connection
    owns it from then on (None: no connection that can carry one)."""

    def require_admin(self) -> None:
        """Refuse the call unless the caller is the kernel's administrator (the admin socket).

        Raises:
            SyscallPermissionError: a process is calling.
        """
        if self.caller.capabilities is not None:
            msg = f"{self.spec.name} is for the kernel's administrators (the orchestrator)"
            raise SyscallPermissionError(msg, call=self.spec.name)

    async def emit(self, item: WireModel) -> None:
        """Send one item of a streaming call to the caller.

        Raises:
            TypeError: the call is not a streaming call, or the item has the wrong model.
        """
        if self._emit is None or self.spec.item is None:
            msg = f"{self.spec.name} is not a streaming call"
            raise TypeError(msg)
        if not isinstance(item, self.spec.item):
            msg = f"{self.spec.name} streams {self.spec.item.__name__}, not {type(item).__name__}"
            raise TypeError(msg)
        await self._emit(item)


Handler = Callable[[CallContext, Any], Awaitable[WireModel]]
"""A call implementation: ``async def handler(ctx, args) -> result``."""


class CallTable:
    """The handlers of a catalog's calls, and the one path every request takes through them.

    Args:
        catalog: the calls this table serves.
        metrics: counts every call (outcome, latency) and denial, if given.
        events: where denials are published as ``call.denied``, if given.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        metrics: KernelMetrics | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.catalog = catalog
        self._handlers: dict[str, Handler] = {}
        self._metrics = metrics
        self._events = events

    def bind(
        self,
        spec: CallSpec[ArgsT, ResultT],
        handler: Callable[[CallContext, ArgsT], Awaitable[ResultT]],
    ) -> None:
        """Implement ``spec`` with ``handler``; each call is bound exactly once."""
        if self.catalog.get(spec.name) is not spec:
            msg = f"{spec.name} is not in this table's catalog"
            raise ValueError(msg)
        if spec.name in self._handlers:
            msg = f"{spec.name} is bound twice"
            raise ValueError(msg)
        self._handlers[spec.name] = handler

    def unbound(self) -> list[str]:
        """Names of catalog calls that have no handler (a complete kernel has none)."""
        return [spec.name for spec in self.catalog if spec.name not in self._handlers]

    async def dispatch(
        self,
        caller: Caller,
        request: Request,
        emit: Callable[[Mapping[str, Any]], Awaitable[None]],
        *,
        act_as: ActAs | None = None,
        cancel_request: Callable[[int], bool] | None = None,
        send_fd: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Run one request for ``caller`` and return its wire result.

        ``cancel_request`` is how the request's connection cancels another of its
        requests (``sys.cancel``); ``send_fd`` how it passes a descriptor with the reply.

        A request naming ``as_pid`` runs as the caller ``act_as`` makes of it (without
        ``act_as``, ``as_pid`` may only name the caller itself); a refusal there is a
        denial like any other.

        The capability check happens before the arguments are even parsed, so a caller
        without the capability learns nothing about the call's inputs. Every call is
        counted with its outcome and latency (a streaming call's is the whole stream);
        a denial is also counted as one and published as a ``call.denied`` event.

        Raises:
            SyscallUnsupportedError: ENOSYS, no such call.
            SyscallPermissionError: EPERM, the caller lacks the call's capability.
            SyscallInvalidArgumentError: EINVAL, the arguments do not fit the call's model.
            AgentOSError: whatever the handler raises.
        """
        spec = self.catalog.get(request.call)
        started = time.perf_counter()
        outcome = _CANCELLED  # unless it returns or raises an Exception
        try:
            result = await self._run(
                caller, spec, request, emit, act_as or own_pid_only, cancel_request, send_fd
            )
        except Exception as exc:
            outcome = error_code(exc).value
            raise
        else:
            outcome = "ok"
            return result
        finally:
            if self._metrics is not None:
                label = spec.name if spec is not None else UNKNOWN_CALL
                self._metrics.observe_call(label, outcome, time.perf_counter() - started)

    async def _run(
        self,
        caller: Caller,
        spec: CallSpec[Any, Any] | None,
        request: Request,
        emit: Callable[[Mapping[str, Any]], Awaitable[None]],
        act_as: ActAs,
        cancel_request: Callable[[int], bool] | None,
        send_fd: Callable[[int], None] | None,
    ) -> dict[str, Any]:
        handler = self._handlers.get(request.call)
        if spec is None or handler is None:
            raise SyscallUnsupportedError(f"no such call {request.call!r}", call=request.call)
        if request.as_pid is not None:
            try:
                caller = act_as(caller, request.as_pid, spec.name)
            except SyscallPermissionError as exc:
                self._denied(caller, spec, OWNERSHIP, exc.message)
                raise
        if spec.capability is not None and not caller.holds(spec.capability):
            denial = SyscallPermissionError(
                f"{spec.name} needs the {spec.capability} capability", call=spec.name
            )
            self._denied(caller, spec, spec.capability.value, denial.message)
            raise denial
        try:
            args = spec.args.model_validate(request.args)
        except pydantic.ValidationError as exc:
            summary, details = describe_invalid(exc, prefix="args")
            raise SyscallInvalidArgumentError(
                f"invalid arguments: {summary}", details=details, call=spec.name
            ) from None

        async def emit_item(item: WireModel) -> None:
            await emit(item.to_wire())

        context = CallContext(
            caller, spec, emit_item if spec.streaming else None,
            cancel_request=cancel_request, send_fd=send_fd,
        )  # fmt: skip
        try:
            result = await handler(context, args)
        except Exception as exc:
            if error_code(exc) in _DENIAL_CODES:
                message = exc.message if isinstance(exc, SyscallError) else str(exc)
                self._denied(caller, spec, OWNERSHIP, message)
            raise
        expected: type[WireModel] = spec.result
        if not isinstance(result, expected):
            msg = f"{spec.name} handler returned {type(result).__name__}, not {spec.result}"
            raise TypeError(msg)
        return result.to_wire()

    def _denied(
        self, caller: Caller, spec: CallSpec[Any, Any], capability: str, message: str
    ) -> None:
        """Log, count and publish a refused call."""
        logger.info("denied %s to pid %d (uid %d): %s", spec.name, caller.pid, caller.uid, message)
        if self._metrics is not None:
            self._metrics.count_denial(spec.name, capability)
        if self._events is not None:
            self._events.publish(
                EventKind.CALL_DENIED,
                pid=caller.pid,
                call=spec.name,
                capability=capability,
                uid=caller.uid,
                message=message,
            )
