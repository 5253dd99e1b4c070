"""Kernel configuration: flags, then ``AGENTOS_*`` environment variables, then defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from kernel.abi import DEFAULT_MAX_FRAME_BYTES
from kernel.client import KernelLocation
from sandbox.policy import RuntimeName

__all__ = ["KernelSettings"]


class KernelSettings(KernelLocation):
    """Settings of the kernel daemon (``agentos kernel``, and the kernel half of ``up``)."""

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

    runtime: RuntimeName = Field(
        default=RuntimeName.AUTO,
        description="container runtime for processes with a command (auto: runc, crun, docker)",
    )
    docker_url: str | None = Field(
        default=None, description="the Docker Engine, for the docker runtime (else DOCKER_HOST)"
    )
    memory_budget: int | None = Field(
        default=None,
        ge=1 << 20,
        description="bytes the containers' memory limits may add up to (80% of RAM if unset)",
    )

    @property
    def socket_path(self) -> Path:
        """Where the admin socket listens."""
        return self.kernel_socket or self.layout.admin_socket
