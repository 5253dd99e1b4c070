"""Where the kernel is: the settings every tier and client command shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.client._discovery import DataLayout, default_data_dir

__all__ = ["MAX_SOCKET_PATH_BYTES", "KernelLocation"]

MAX_SOCKET_PATH_BYTES = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


class KernelLocation(BaseSettings):
    """The data directory and the admin socket, from flags or ``AGENTOS_*`` variables.

    Paths are made absolute when read, so a relative ``--data-dir`` means the same thing
    to every process that is handed it, whatever its working directory.
    """

    model_config = SettingsConfigDict(env_prefix="AGENTOS_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="state and sockets")
    kernel_socket: Path | None = Field(
        default=None, description="the admin socket; default DATA_DIR/run/kernel.sock"
    )

    @field_validator("data_dir", "kernel_socket")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return path if path is None else path.absolute()

    @model_validator(mode="after")
    def _socket_fits(self) -> Self:
        path = self.kernel_socket or self.layout.admin_socket
        size = len(os.fsencode(path))
        if size > MAX_SOCKET_PATH_BYTES:
            msg = (
                f"socket path {path} is {size} bytes; Unix sockets allow "
                f"{MAX_SOCKET_PATH_BYTES}: choose a shorter data directory or socket path"
            )
            raise ValueError(msg)
        return self

    @property
    def layout(self) -> DataLayout:
        """The paths inside the data directory."""
        return DataLayout(self.data_dir)
