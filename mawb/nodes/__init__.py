"""The node library: every node type mawb knows, registered by name.

Importing this package registers the built-in types from an explicit list of modules;
look types up with `mawb.nodes.get(name)`.
"""

from __future__ import annotations

from mawb.nodes import actions, integrations, logic, triggers
from mawb.nodes.base import CATEGORY_COLORS, Category, NodeType, Outputs, Params
from mawb.nodes.registry import (
    DuplicateNodeTypeError,
    UnknownNodeTypeError,
    all_types,
    get,
    has,
    register,
)

__all__ = [
    "CATEGORY_COLORS",
    "Category",
    "DuplicateNodeTypeError",
    "NodeType",
    "Outputs",
    "Params",
    "UnknownNodeTypeError",
    "actions",
    "all_types",
    "get",
    "has",
    "integrations",
    "logic",
    "register",
    "triggers",
]
