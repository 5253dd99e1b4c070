"""Kernel configuration: flags, then ``AGENTOS_*`` environment variables, then defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.abi import DEFAULT_MAX_FRAME_BYTES
from kernel.client import DataLayout, default_data_dir

__all__ = ["KernelSettings"]


class KernelSettings(BaseSettings):
    """Settings of the kernel daemon (``agentos kernel``, and the kernel half of ``up``)."""

    model_config = SettingsConfigDict(env_prefix="AGENTOS_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="state and sockets")
    kernel_socket: Path | None = Field(
        default=None, description="admin socket path; default DATA_DIR/run/kernel.sock"
    )
    admin_uids: frozenset[int] = Field(
        default=frozenset(),
        description="uids allowed on the admin socket besides the kernel's own",
    )
    max_frame_bytes: int = Field(
        default=DEFAULT_MAX_FRAME_BYTES,
        ge=4096,
        le=256 * 1024 * 1024,
        description="largest frame accepted or sent on the kernel socket",
    )

    @property
    def layout(self) -> DataLayout:
        """The paths inside the data directory."""
        return DataLayout(self.data_dir)

    @property
    def socket_path(self) -> Path:
        """Where the admin socket listens."""
        return self.kernel_socket or self.layout.admin_socket
