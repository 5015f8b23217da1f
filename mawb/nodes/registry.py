"""The registry of node types: an explicit allow-list keyed by type name.

Flow files name node types by string; the string is only ever looked up here, never
imported as a dotted path, so a flow file cannot load code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from mawb.nodes.base import NodeType

T = TypeVar("T", bound="type[NodeType]")

_REGISTRY: dict[str, type[NodeType]] = {}
# Bumped on every change, so caches of what a flow means (`mawb.flowplan`) never outlive
# the types they were built with.
_generation = 0


class DuplicateNodeTypeError(ValueError):
    """Two classes claimed the same type name."""


class UnknownNodeTypeError(KeyError):
    """A flow names a type that is not registered."""


def register(cls: T) -> T:
    """Class decorator adding a node type; a second class with the same name is an error."""
    name = cls.type
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise DuplicateNodeTypeError(f"node type {name!r} is already registered")
    global _generation
    if _REGISTRY.get(name) is not cls:
        _generation += 1
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a type (tests and plugins that replace one)."""
    global _generation
    if _REGISTRY.pop(name, None) is not None:
        _generation += 1


def generation() -> int:
    """A number that changes whenever a type is registered or removed."""
    return _generation


def get(name: str) -> type[NodeType]:
    """The class registered as `name`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNodeTypeError(name) from None


def has(name: str) -> bool:
    return name in _REGISTRY


def all_types() -> list[type[NodeType]]:
    """Every registered type, by category then name (palette order)."""
    order = {"trigger": 0, "action": 1, "logic": 2, "integration": 3}
    return sorted(_REGISTRY.values(), key=lambda cls: (order[cls.category.value], cls.type))
