"""Access tokens: where they come from, and the check every non-public route passes.

Like Jupyter's: a token is generated on first start, stored in the data directory
(mode 0600) and printed with the desktop URL; ``AGENTOS_TOKEN`` overrides it. The admin
token (``AGENTOS_ADMIN_TOKEN``, or generated likewise) is accepted wherever the user token
is, and is the only one accepted on admin routes.
"""

from __future__ import annotations

import enum
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr
from quart import Quart, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from orchestrator.config import MIN_TOKEN_LENGTH
from sandbox.errors import FailedPreconditionError
from sandbox.fsutil import atomic_write

__all__ = ["Role", "Tokens", "admin_only", "install_auth", "load_tokens", "public"]

logger = logging.getLogger("agentos.orchestrator.auth")

ViewT = TypeVar("ViewT", bound=Callable[..., Awaitable[object]])
_PUBLIC_ATTR = "_agentos_public"
_ADMIN_ATTR = "_agentos_admin"


class Role(enum.StrEnum):
    """What a presented token entitles its holder to."""

    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Tokens:
    """The two secrets this orchestrator accepts."""

    user: str
    admin: str

    def role_of(self, presented: str) -> Role | None:
        """The role a presented token grants, compared in constant time."""
        candidate = presented.encode()
        admin = hmac.compare_digest(candidate, self.admin.encode())
        user = hmac.compare_digest(candidate, self.user.encode())
        if admin:
            return Role.ADMIN
        if user:
            return Role.USER
        return None


def _stored_token(path: Path) -> str:
    """Read the token at ``path``, creating it (0600) on first use."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        atomic_write(path, token.encode() + b"\n", mode=0o600)
        logger.info("generated a new token in %s", path)
        return token
    if len(token) < MIN_TOKEN_LENGTH:
        msg = f"{path} holds a token shorter than {MIN_TOKEN_LENGTH} characters; delete it"
        raise FailedPreconditionError(msg)
    return token


def load_tokens(state_dir: Path, *, user: SecretStr | None, admin: SecretStr | None) -> Tokens:
    """The configured tokens, or the ones stored in ``state_dir`` (generated if absent)."""
    return Tokens(
        user=user.get_secret_value() if user else _stored_token(state_dir / "token"),
        admin=admin.get_secret_value() if admin else _stored_token(state_dir / "admin-token"),
    )


def public(view: ViewT) -> ViewT:
    """Mark a view as reachable without a token."""
    setattr(view, _PUBLIC_ATTR, True)
    return view


def admin_only(view: ViewT) -> ViewT:
    """Mark a view as reachable with the admin token alone."""
    setattr(view, _ADMIN_ATTR, True)
    return view


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def install_auth(app: Quart, tokens: Tokens, *, public_endpoints: Collection[str] = ()) -> None:
    """Require a bearer token on every route but :func:`public` ones.

    Routes marked :func:`admin_only` take the admin token alone (403 for the user's).
    """

    @app.before_request
    async def authenticate() -> None:
        if request.routing_exception is not None:
            return  # unknown route or method: answered as such, no secret needed to learn it
        view = app.view_functions.get(request.endpoint or "")
        endpoint = request.endpoint or ""
        if (
            endpoint == "static"
            or endpoint in public_endpoints
            or getattr(view, _PUBLIC_ATTR, False)
        ):
            return
        if request.method == "OPTIONS":  # a CORS preflight never carries a token; it runs no view
            return
        presented = _bearer(request.headers.get("Authorization"))
        role = tokens.role_of(presented) if presented else None
        if role is None:
            reason = "a valid token is required" if presented else "missing bearer token"
            raise Unauthorized(
                description=f"{reason}: send 'Authorization: Bearer <token>'",
                www_authenticate=WWWAuthenticate("bearer", {"realm": "agentos"}),
            )
        if role is not Role.ADMIN and getattr(view, _ADMIN_ATTR, False):
            raise Forbidden(description="this route needs the admin token")
        g.role = role
