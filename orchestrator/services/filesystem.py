"""``filesystem.*``: files through the kernel's VFS, as the app's own process.

A relative path is within the app's directory (``notes/a.md`` is
``/storage/apps/<app>/notes/a.md``); an absolute one is a kernel path, reached only where
the app's grants reach (``/tmp`` under the standard policy). There are no host paths:
the kernel's mounts are all there is.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Any, Literal

from pydantic import Field

from kernel.client import abi
from orchestrator.services._registry import Params, Service, ServiceContext, Tool
from sandbox.errors import InvalidArgumentError

__all__ = ["MAX_CONTENT_BYTES", "filesystem_service"]

MAX_CONTENT_BYTES = 8 << 20  # the kernel's fs.read/fs.write limit

Encoding = Literal["utf-8", "base64"]
_PATH = Field(min_length=1, max_length=4096, description="relative: in the app's directory")


class _Path(Params):
    path: str = _PATH


class _Read(_Path):
    encoding: Encoding = Field(default="utf-8", description="utf-8 text, or base64 bytes")


class _Write(_Path):
    content: str = Field(max_length=2 * MAX_CONTENT_BYTES, description="text, or base64")
    encoding: Encoding = "utf-8"
    append: bool = Field(default=False, description="add to the end instead of replacing")
    parents: bool = Field(default=True, description="make missing parent directories")


class _Mkdir(_Path):
    parents: bool = Field(default=True, description="make missing parents too")


class _Rmdir(_Path):
    recursive: bool = Field(default=False, description="with everything in it")


class _Move(Params):
    source: str = _PATH
    target: str = _PATH


def _resolve(ctx: ServiceContext, tool: str, path: str) -> str:
    if path.startswith("/"):
        return path
    return f"/storage/apps/{ctx.require_app(tool)}/{path}"


def _decode(params: _Write) -> bytes:
    if params.encoding == "utf-8":
        return params.content.encode()
    try:
        return base64.b64decode(params.content, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"content is not base64: {exc}"
        raise InvalidArgumentError(msg) from None


class _Tools:
    @staticmethod
    async def read(ctx: ServiceContext, params: _Read) -> Any:
        path = _resolve(ctx, "filesystem.read", params.path)
        data: bytes = (await ctx.call("fs.read", {"path": path}))["data"]
        if params.encoding == "base64":
            return {"path": path, "content": base64.b64encode(data).decode(), "size": len(data)}
        try:
            return {"path": path, "content": data.decode(), "size": len(data)}
        except UnicodeDecodeError:
            msg = f"{path} is not UTF-8 text: read it with encoding base64"
            raise InvalidArgumentError(msg) from None

    @staticmethod
    async def write(ctx: ServiceContext, params: _Write) -> Any:
        path = _resolve(ctx, "filesystem.write", params.path)
        data = _decode(params)
        if len(data) > MAX_CONTENT_BYTES:
            msg = f"{len(data)} bytes; at most {MAX_CONTENT_BYTES} at once"
            raise InvalidArgumentError(msg)
        parent = path.rsplit("/", 1)[0]
        if params.parents and parent:
            with contextlib.suppress(abi.SyscallExistsError):
                await ctx.call("fs.mkdir", {"path": parent, "parents": True})
        result = await ctx.call("fs.write", {"path": path, "data": data, "append": params.append})
        return {"path": path, "size": result["size"]}

    @staticmethod
    async def listing(ctx: ServiceContext, params: _Path) -> Any:
        return await ctx.call("fs.list", {"path": _resolve(ctx, "filesystem.list", params.path)})

    @staticmethod
    async def delete(ctx: ServiceContext, params: _Path) -> Any:
        path = _resolve(ctx, "filesystem.delete", params.path)
        await ctx.call("fs.delete", {"path": path})
        return {"path": path, "deleted": True}

    @staticmethod
    async def mkdir(ctx: ServiceContext, params: _Mkdir) -> Any:
        path = _resolve(ctx, "filesystem.mkdir", params.path)
        await ctx.call("fs.mkdir", {"path": path, "parents": params.parents})
        return {"path": path}

    @staticmethod
    async def rmdir(ctx: ServiceContext, params: _Rmdir) -> Any:
        path = _resolve(ctx, "filesystem.rmdir", params.path)
        await ctx.call("fs.rmdir", {"path": path, "recursive": params.recursive})
        return {"path": path}

    @staticmethod
    async def exists(ctx: ServiceContext, params: _Path) -> Any:
        path = _resolve(ctx, "filesystem.exists", params.path)
        return {"path": path, **await ctx.call("fs.exists", {"path": path})}

    @staticmethod
    async def stat(ctx: ServiceContext, params: _Path) -> Any:
        path = _resolve(ctx, "filesystem.stat", params.path)
        return {"path": path, **await ctx.call("fs.stat", {"path": path})}

    @staticmethod
    async def move(ctx: ServiceContext, params: _Move) -> Any:
        source = _resolve(ctx, "filesystem.move", params.source)
        target = _resolve(ctx, "filesystem.move", params.target)
        await ctx.call("fs.move", {"source": source, "target": target})
        return {"source": source, "target": target}

    @staticmethod
    async def copy(ctx: ServiceContext, params: _Move) -> Any:
        source = _resolve(ctx, "filesystem.copy", params.source)
        target = _resolve(ctx, "filesystem.copy", params.target)
        await ctx.call("fs.copy", {"source": source, "target": target})
        return {"source": source, "target": target}


def filesystem_service() -> Service:
    """The ``filesystem`` service."""
    t = _Tools
    return Service(
        id="filesystem", name="Files", category="data",
        description="Read, write and organise files in the app's directory through the kernel.",
        capabilities=("read_file", "write_file", "create_file", "delete_file", "list_directory"),
        tools=(
            Tool("filesystem.read", "A file's content.", _Read, "{path, content, size}", t.read),
            Tool("filesystem.write", "Write (or append to) a file, creating it.", _Write,
                 "{path, size}", t.write),
            Tool("filesystem.list", "A directory's entries.", _Path, "{path, entries}", t.listing),
            Tool("filesystem.delete", "Delete a file.", _Path, "{path, deleted}", t.delete),
            Tool("filesystem.mkdir", "Make a directory.", _Mkdir, "{path}", t.mkdir),
            Tool("filesystem.rmdir", "Remove a directory.", _Rmdir, "{path}", t.rmdir),
            Tool("filesystem.exists", "Whether a path exists.", _Path, "{path, exists}", t.exists),
            Tool("filesystem.stat", "A path's kind, size and times.", _Path, "{path, ...}", t.stat),
            Tool("filesystem.move", "Rename a file or directory.", _Move, "{source, target}",
                 t.move),
            Tool("filesystem.copy", "Copy a file.", _Move, "{source, target}", t.copy),
        ),
    )  # fmt: skip
