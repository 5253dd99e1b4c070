"""Call specifications: each syscall's name, argument and result models, and capability.

A :class:`CallSpec` is the contract; the kernel binds a handler to it and the client uses
it to send typed arguments and read typed results. Values on the wire are msgpack-native:
times are float Unix seconds, binary data is bytes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Strict

from kernel.abi._messages import CALL_NAME_PATTERN
from sandbox.capabilities import Capability

__all__ = ["CallSpec", "Catalog", "WireEnum", "WireModel"]

EnumT = TypeVar("EnumT", bound=enum.Enum)

WireEnum = Annotated[EnumT, Strict(strict=False)]
"""An enum field of a :class:`WireModel`: on the wire, the member's value."""


class WireModel(BaseModel):
    """Base of every ABI model: immutable, strict, and unknown fields are an error.

    Strict: a value of the wrong type is refused, not converted (``{"pid": true}`` is not
    pid 1, ``"3"`` is not 3). Enum fields are written ``WireEnum[...]`` so that their
    values, which are strings on the wire, are accepted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def to_wire(self) -> dict[str, Any]:
        """The msgpack-ready form of this model."""
        return self.model_dump(mode="python")


ArgsT = TypeVar("ArgsT", bound=WireModel)
ResultT = TypeVar("ResultT", bound=WireModel)


@dataclass(frozen=True)
class CallSpec(Generic[ArgsT, ResultT]):
    """One syscall of the ABI.

    Attributes:
        name: dotted wire name, ``category.verb``.
        summary: one line for ``sys.calls`` and the CLI.
        args: model of the ``args`` map.
        result: model of the final result.
        capability: what the caller must hold, or None for calls anyone may make.
        item: model of each streamed item, for streaming calls.
    """

    name: str
    summary: str
    args: type[ArgsT]
    result: type[ResultT]
    capability: Capability | None
    item: type[WireModel] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(CALL_NAME_PATTERN, self.name):
            msg = f"invalid call name {self.name!r}"
            raise ValueError(msg)

    @property
    def category(self) -> str:
        """The part of the name before the first dot."""
        return self.name.split(".", 1)[0]

    @property
    def streaming(self) -> bool:
        """Whether the call sends items before its final reply."""
        return self.item is not None


@dataclass(frozen=True)
class Catalog:
    """An immutable, ordered set of call specifications keyed by name."""

    specs: tuple[CallSpec[Any, Any], ...]
    _by_name: Mapping[str, CallSpec[Any, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, CallSpec[Any, Any]] = {}
        for spec in self.specs:
            if spec.name in by_name:
                msg = f"call {spec.name!r} is specified twice"
                raise ValueError(msg)
            by_name[spec.name] = spec
        object.__setattr__(self, "_by_name", by_name)

    @classmethod
    def of(cls, *groups: Iterable[CallSpec[Any, Any]]) -> Catalog:
        """Join groups of specs into one catalog."""
        return cls(tuple(spec for group in groups for spec in group))

    def get(self, name: str) -> CallSpec[Any, Any] | None:
        """The spec called ``name``, if any."""
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[CallSpec[Any, Any]]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)
