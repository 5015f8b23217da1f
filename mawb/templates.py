"""The flow template library: ready-made flows for the gallery, the CLI and notebooks.

Templates are ordinary flow files in the repository's `templates/` folder; wheels carry
them inside the package as `mawb/flow_templates/` (see pyproject.toml), so an installed
mawb finds them without the source tree.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mawb.model import Flow, load

_PACKAGED = Path(__file__).parent / "flow_templates"
_SOURCE_TREE = Path(__file__).resolve().parent.parent / "templates"


def templates_dir() -> Path:
    """Where the template files live (packaged copy first, then the source tree)."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


@cache
def _paths() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(templates_dir().glob("*.json")):
        found[path.stem] = path
    return found


def template_ids() -> list[str]:
    return list(_paths())


def load_template(template_id: str) -> Flow:
    """A fresh copy of the template flow (edit it freely).

    >>> load_template("lead_welcome_v1").name
    'Welcome series'
    """
    try:
        path = _paths()[template_id]
    except KeyError:
        known = ", ".join(_paths()) or "none"
        raise KeyError(f"no template {template_id!r}; available: {known}") from None
    return load(path)


def list_templates() -> list[Flow]:
    return [load_template(template_id) for template_id in template_ids()]
