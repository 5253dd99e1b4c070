"""``storage.*``: an app's key/value store, kept in its own directory through the kernel.

Each value is a JSON file ``/storage/apps/<app>/.storage/<key>.json`` written as the app's
own kernel process, so it counts against the app's quota and needs the app's own grants.
A key may be any text up to 200 characters: it is percent-encoded into the file name, so
no key can name another path (``../x`` becomes ``..%2Fx``).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from pydantic import Field, JsonValue

from kernel.client import abi
from orchestrator.services._registry import Params, Service, ServiceContext, Tool
from sandbox.errors import InvalidArgumentError, NotFoundError

__all__ = ["MAX_VALUE_BYTES", "key_file", "storage_service"]

MAX_VALUE_BYTES = 1 << 20
_SUFFIX = ".json"


def key_file(key: str) -> str:
    """The file name of ``key``: percent-encoded, never ``.``-led, never a path."""
    name = urllib.parse.quote(key, safe="-_ ").replace(" ", "%20")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name + _SUFFIX


def _key_of(name: str) -> str:
    return urllib.parse.unquote(name.removesuffix(_SUFFIX))


class _Key(Params):
    key: str = Field(min_length=1, max_length=200, description="any text")


class _Set(_Key):
    value: JsonValue = Field(description="any JSON value, at most 1 MiB encoded")


class _None(Params):
    pass


def _directory(ctx: ServiceContext, tool: str) -> str:
    return f"/storage/apps/{ctx.require_app(tool)}/.storage"


class _Tools:
    @staticmethod
    async def set_(ctx: ServiceContext, params: _Set) -> Any:
        data = json.dumps(params.value, separators=(",", ":")).encode()
        if len(data) > MAX_VALUE_BYTES:
            msg = f"the value takes {len(data)} bytes encoded; at most {MAX_VALUE_BYTES}"
            raise InvalidArgumentError(msg)
        folder = _directory(ctx, "storage.set")
        await ctx.call("fs.mkdir", {"path": folder, "parents": True})
        await ctx.call("fs.write", {"path": f"{folder}/{key_file(params.key)}", "data": data})
        return {"key": params.key, "size": len(data)}

    @staticmethod
    async def get(ctx: ServiceContext, params: _Key) -> Any:
        path = f"{_directory(ctx, 'storage.get')}/{key_file(params.key)}"
        try:
            read = await ctx.call("fs.read", {"path": path})
        except abi.SyscallNotFoundError:
            msg = f"no key {params.key!r}"
            raise NotFoundError(msg) from None
        return {"key": params.key, "value": json.loads(read["data"])}

    @staticmethod
    async def remove(ctx: ServiceContext, params: _Key) -> Any:
        path = f"{_directory(ctx, 'storage.remove')}/{key_file(params.key)}"
        try:
            await ctx.call("fs.delete", {"path": path})
        except abi.SyscallNotFoundError:
            return {"key": params.key, "removed": False}
        return {"key": params.key, "removed": True}

    @staticmethod
    async def keys(ctx: ServiceContext, _params: _None) -> Any:
        try:
            listing = await ctx.call("fs.list", {"path": _directory(ctx, "storage.list")})
        except abi.SyscallNotFoundError:
            return {"keys": []}
        names = [e["name"] for e in listing["entries"] if e["name"].endswith(_SUFFIX)]
        return {"keys": sorted(_key_of(name) for name in names)}

    @staticmethod
    async def clear(ctx: ServiceContext, _params: _None) -> Any:
        removed = (await _Tools.keys(ctx, _params))["keys"]
        folder = _directory(ctx, "storage.clear")
        for key in removed:
            await ctx.call("fs.delete", {"path": f"{folder}/{key_file(key)}"})
        return {"removed": len(removed)}


def storage_service() -> Service:
    """The ``storage`` service."""
    t = _Tools
    return Service(
        id="storage", name="Storage", category="data",
        description="The app's own key/value store: JSON values kept in its files.",
        capabilities=("read_file", "write_file", "create_file", "delete_file", "list_directory"),
        tools=(
            Tool("storage.set", "Keep a JSON value under a key.", _Set, "{key, size}", t.set_),
            Tool("storage.get", "The value of a key (404 if none).", _Key, "{key, value}", t.get),
            Tool("storage.remove", "Forget a key.", _Key, "{key, removed}", t.remove),
            Tool("storage.list", "Every key, sorted.", _None, "{keys}", t.keys),
            Tool("storage.clear", "Forget every key.", _None, "{removed}", t.clear),
        ),
    )  # fmt: skip
