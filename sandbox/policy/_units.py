"""Sizes and durations as people write them: ``256M``, ``1.5G``, ``30s``, ``500ms``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

__all__ = ["Bytes", "Seconds", "parse_duration", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_size(value: object) -> object:
    """``256M`` -> 268435456 (binary units, as Docker reads them); numbers pass through."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            msg = f"not a size: {value!r} (use e.g. 512K, 256M, 2G)"
            raise ValueError(msg)
        return int(float(match[1]) * _SIZE_UNITS[match[2].lower()])
    return value


def parse_duration(value: object) -> object:
    """``30s``, ``5m``, ``500ms``, ``1h`` -> seconds; numbers pass through as seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            msg = f"not a duration: {value!r} (use e.g. 500ms, 30s, 5m, 1h)"
            raise ValueError(msg)
        return float(match[1]) * _DURATION_UNITS[(match[2] or "s").lower()]
    return value


Bytes = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]
"""A size in bytes, also accepted as ``256M``."""

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
"""A positive duration in seconds, also accepted as ``30s``."""
