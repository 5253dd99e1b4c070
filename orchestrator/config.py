"""Orchestrator configuration: flags, then ``AGENTOS_*`` environment variables, then defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from kernel.client import KernelLocation, locate_admin_socket

__all__ = ["MIN_TOKEN_LENGTH", "OrchestratorSettings"]

MIN_TOKEN_LENGTH = 16


class OrchestratorSettings(KernelLocation):
    """Settings of the web tier (``agentos orchestrator``, and the web half of ``up``)."""

    host: str = Field(default="127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="port; 0 picks a free one")
    token: SecretStr | None = Field(
        default=None, description="API access token; generated and stored if unset"
    )
    admin_token: SecretStr | None = Field(
        default=None, description="admin token; generated and stored if unset"
    )
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body accepted"
    )
    frontend_dir: Path | None = Field(
        default=None, description="built desktop (index.html + assets); frontend/dist if unset"
    )
    access_log: bool = Field(default=False, description="log every HTTP request")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="origins other sites' pages may call the API from (none: CORS off)",
    )
    rate_limit: float = Field(
        default=50.0, ge=0, description="requests per second per client (0: no limit)"
    )
    rate_burst: int = Field(default=200, ge=1, description="requests a client may burst")
    apps_dir: Path | None = Field(
        default=None, description="prebuilt Blueprints seeded into the registry; apps/ if unset"
    )
    freeze_background: bool = Field(
        default=False, description="freeze minimised apps' containers instead of throttling"
    )
    app_policies: list[str] = Field(
        default_factory=lambda: ["minimal", "standard"],
        description="the sandbox policies apps may ask for; never wider",
    )

    @field_validator("token", "admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            msg = f"must be at least {MIN_TOKEN_LENGTH} characters"
            raise ValueError(msg)
        return value

    @property
    def state_dir(self) -> Path:
        """The orchestrator's own directory inside the data directory."""
        return self.layout.orchestrator_dir

    def kernel_socket_path(self) -> Path:
        """The admin socket to use: the configured one, else the running kernel's."""
        return self.kernel_socket or locate_admin_socket(self.data_dir)
