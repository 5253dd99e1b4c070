"""``auth.*``: accounts for an app's users, with argon2id hashes and sessions that last.

Users and sessions live in SQLite (WAL) in the orchestrator's state directory, so a
restart logs no one out; a session ends at logout or when it expires (24 h by default).
Each app has its own users (the desktop, with no app, its own too). Session tokens are
random and only their SHA-256 is stored: the database alone does not open a session.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field

from orchestrator.services._registry import Params, Service, ServiceContext, Tool
from sandbox.errors import AlreadyExistsError, PermissionDeniedError

__all__ = ["DEFAULT_SESSION_SECONDS", "AuthStore", "auth_service"]

DEFAULT_SESSION_SECONDS = 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    app TEXT NOT NULL, username TEXT NOT NULL, password_hash TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (app, username)
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, app TEXT NOT NULL, username TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
"""

_DENIED = "wrong username or password"

T = TypeVar("T")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthStore:
    """Users and sessions in the SQLite database at ``path``.

    Args:
        path: the database file (made with its directory if missing).
        session_seconds: how long a session lasts.
        clock: Unix seconds.
    """

    def __init__(
        self,
        path: Path,
        *,
        session_seconds: float = DEFAULT_SESSION_SECONDS,
        hasher: PasswordHasher | None = None,
        clock: Any = time.time,
    ) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a session answered is a session kept
        self._db.executescript(_SCHEMA)
        path.chmod(0o600)
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        self._session_seconds = session_seconds
        self._clock = clock
        self._lock = trio.Lock()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            return await trio.to_thread.run_sync(work, *args)

    def _register(self, app: str, username: str, password: str) -> dict[str, Any]:
        created = self._clock()
        try:
            self._db.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?)",
                (app, username, self._hasher.hash(password), created),
            )
        except sqlite3.IntegrityError:
            msg = f"user {username!r} exists"
            raise AlreadyExistsError(msg) from None
        return {"username": username, "created_at": created}

    async def register(self, app: str, username: str, password: str) -> dict[str, Any]:
        """A new user.

        Raises:
            AlreadyExistsError: the name is taken (in this app).
        """
        return await self._run(self._register, app, username, password)

    def _login(self, app: str, username: str, password: str) -> dict[str, Any]:
        now = self._clock()
        row = self._db.execute(
            "SELECT password_hash FROM users WHERE app = ? AND username = ?", (app, username)
        ).fetchone()
        try:
            self._hasher.verify(row[0] if row else self._dummy, password)  # same cost either way
        except (VerificationError, InvalidHashError):
            raise PermissionDeniedError(_DENIED) from None
        if row is None:
            raise PermissionDeniedError(_DENIED)
        if self._hasher.check_needs_rehash(row[0]):
            self._db.execute(
                "UPDATE users SET password_hash = ? WHERE app = ? AND username = ?",
                (self._hasher.hash(password), app, username),
            )
        token = secrets.token_urlsafe(32)
        expires = now + self._session_seconds
        self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        self._db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (_digest(token), app, username, now, expires),
        )
        return {"token": token, "username": username, "expires_at": expires}

    async def login(self, app: str, username: str, password: str) -> dict[str, Any]:
        """A new session for a user whose password matches.

        Raises:
            PermissionDeniedError: no such user, or the wrong password (one message).
        """
        return await self._run(self._login, app, username, password)

    def _session(self, app: str, token: str) -> tuple[str, float] | None:
        row = self._db.execute(
            "SELECT username, expires_at FROM sessions WHERE token_hash = ? AND app = ?",
            (_digest(token), app),
        ).fetchone()
        if row is None or row[1] <= self._clock():
            return None
        return row[0], row[1]

    async def verify(self, app: str, token: str) -> dict[str, Any]:
        """Whether ``token`` is a live session of this app, and whose."""
        found = await self._run(self._session, app, token)
        if found is None:
            return {"valid": False}
        return {"valid": True, "username": found[0], "expires_at": found[1]}

    def _logout(self, app: str, token: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM sessions WHERE token_hash = ? AND app = ?", (_digest(token), app)
        )
        return cursor.rowcount > 0

    async def logout(self, app: str, token: str) -> bool:
        """End a session; whether there was one."""
        return bool(await self._run(self._logout, app, token))

    def _user(self, app: str, token: str) -> dict[str, Any]:
        found = self._session(app, token)
        if found is None:
            msg = "not a valid session: log in again"
            raise PermissionDeniedError(msg)
        created = self._db.execute(
            "SELECT created_at FROM users WHERE app = ? AND username = ?", (app, found[0])
        ).fetchone()
        return {"username": found[0], "created_at": created[0] if created else None}

    async def user(self, app: str, token: str) -> dict[str, Any]:
        """The user of a live session.

        Raises:
            PermissionDeniedError: the token is no live session.
        """
        return await self._run(self._user, app, token)


_USERNAME = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")


class _Credentials(Params):
    username: str = _USERNAME
    password: str = Field(min_length=8, max_length=256, description="at least 8 characters")


class _Token(Params):
    token: str = Field(min_length=1, max_length=256, description="from auth.login")


def auth_service(store: AuthStore) -> Service:
    """The ``auth`` service over ``store``."""

    def scope(ctx: ServiceContext) -> str:
        return ctx.app_id or ""

    async def register(ctx: ServiceContext, params: _Credentials) -> Any:
        return await store.register(scope(ctx), params.username, params.password)

    async def login(ctx: ServiceContext, params: _Credentials) -> Any:
        return await store.login(scope(ctx), params.username, params.password)

    async def logout(ctx: ServiceContext, params: _Token) -> Any:
        return {"logged_out": await store.logout(scope(ctx), params.token)}

    async def verify(ctx: ServiceContext, params: _Token) -> Any:
        return await store.verify(scope(ctx), params.token)

    async def get_user(ctx: ServiceContext, params: _Token) -> Any:
        return await store.user(scope(ctx), params.token)

    return Service(
        id="auth", name="Accounts", category="security",
        description="Users of the app: register, log in and out, check a session.",
        capabilities=(),
        tools=(
            Tool("auth.register", "Create a user (argon2id hash).", _Credentials,
                 "{username, created_at}", register),
            Tool("auth.login", "A session for a user and password.", _Credentials,
                 "{token, username, expires_at}", login),
            Tool("auth.logout", "End a session.", _Token, "{logged_out}", logout),
            Tool("auth.verify", "Whether a session is live, and whose.", _Token,
                 "{valid, username?, expires_at?}", verify),
            Tool("auth.getUser", "The user of a live session.", _Token,
                 "{username, created_at}", get_user),
        ),
    )  # fmt: skip
