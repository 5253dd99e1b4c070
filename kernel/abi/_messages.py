"""The request and reply envelopes of the kernel socket (DESIGN 3.2).

Request: ``{"id": int, "call": "sys.info", "args": {...}}``.
Replies: ``{"id", "ok": true, "result": ...}``, ``{"id", "ok": false, "error": {"code",
"message", "details"?}}``, and for streaming calls any number of ``{"id", "item": ...}``
before the final reply. A reply to a frame whose id could not be read carries ``"id": nil``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from kernel.abi._errors import ErrorCode, SyscallInvalidArgumentError
from sandbox.errors import describe_invalid

__all__ = [
    "CALL_NAME_PATTERN",
    "MAX_REQUEST_ID",
    "MalformedRequestError",
    "Reply",
    "Request",
    "error_reply",
    "item_reply",
    "ok_reply",
    "parse_reply",
    "parse_request",
]

CALL_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
MAX_REQUEST_ID: Final = 2**63 - 1


class MalformedRequestError(SyscallInvalidArgumentError):
    """A frame decoded but is not a valid request; ``request_id`` is its id if readable."""

    def __init__(
        self, message: str, *, request_id: int | None, details: Sequence[Mapping[str, Any]]
    ) -> None:
        super().__init__(message, details=details)
        self.request_id = request_id


class Request(BaseModel):
    """One syscall request as it arrives on the socket."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: int = Field(ge=0, le=MAX_REQUEST_ID)
    call: str = Field(max_length=64, pattern=CALL_NAME_PATTERN)
    args: dict[str, Any] = Field(default_factory=dict)
    as_pid: int | None = Field(
        default=None, ge=0, le=MAX_REQUEST_ID, description="act as this process (admin only)"
    )


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class Reply(BaseModel):
    """One frame from the kernel, as a client reads it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int | None
    ok: bool | None = None
    result: Any = None
    error: _ErrorBody | None = None
    item: Any = None
    is_item: bool = False


def _id_of(message: Mapping[str, Any]) -> int | None:
    value = message.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REQUEST_ID:
        return value
    return None


def parse_request(message: Mapping[str, Any]) -> Request:
    """Validate a decoded frame as a request.

    Raises:
        MalformedRequestError: with ``details`` naming each bad field.
    """
    try:
        return Request.model_validate(message)
    except pydantic.ValidationError as exc:
        summary, details = describe_invalid(exc, whole="<frame>")
        raise MalformedRequestError(
            f"malformed request: {summary}", request_id=_id_of(message), details=details
        ) from None


def ok_reply(request_id: int, result: Any) -> dict[str, Any]:
    """The final, successful reply to a request."""
    return {"id": request_id, "ok": True, "result": result}


def item_reply(request_id: int, item: Any) -> dict[str, Any]:
    """One item of a streaming call."""
    return {"id": request_id, "item": item}


def error_reply(
    request_id: int | None,
    code: ErrorCode,
    message: str,
    details: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The final, failed reply to a request (``request_id`` None when unknown)."""
    error: dict[str, Any] = {"code": str(code), "message": message}
    if details:
        error["details"] = [dict(d) for d in details]
    return {"id": request_id, "ok": False, "error": error}


def parse_reply(message: Mapping[str, Any]) -> Reply:
    """Validate a decoded frame from the kernel.

    Raises:
        SyscallInvalidArgumentError: the frame is not a reply the protocol defines.
    """
    if "item" in message:
        if not isinstance(message.get("id"), int):
            raise SyscallInvalidArgumentError("stream item without an integer id")
        return Reply(id=message["id"], item=message["item"], is_item=True)
    try:
        reply = Reply.model_validate(message)
    except pydantic.ValidationError as exc:
        raise SyscallInvalidArgumentError(f"malformed reply from the kernel: {exc}") from None
    if reply.ok is None or (reply.ok is False and reply.error is None):
        raise SyscallInvalidArgumentError("malformed reply from the kernel: no ok/error")
    if reply.id is None and reply.error is None:
        raise SyscallInvalidArgumentError("malformed reply from the kernel: no id, no error")
    return reply
