"""mawb's flow canvas: a Streamlit components-v2 component built on React Flow.

The workbench needs a canvas that streamlit-flow-component cannot offer: nodes with one labelled
output per branch, a drag-and-drop palette, diagnostics and run counts drawn on the nodes. The
browser side lives in ``frontend/canvas`` and is built into ``canvas_assets/`` (committed, fixed
file names); this module only registers that bundle with Streamlit, on first use because
registering outside ``streamlit run`` raises, and translates between Python and the component.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamlit.components.v2.types import ComponentRenderer

COMPONENT_NAME = "mawb.flow_canvas"
"""``<distribution>.<component>`` as declared in ``mawb/pyproject.toml``."""

ASSET_FILES = ("canvas.js", "canvas.css")
_GRAPH_KEYS = ("nodes", "edges")


def flow_canvas(
    graph: dict[str, Any],
    *,
    palette: list[dict[str, Any]] | None = None,
    key: str,
    read_only: bool = False,
    height: int = 560,
    fit_view: bool = True,
    view_key: str | None = None,
    minimap: bool | None = None,
) -> dict[str, Any] | None:
    """Render the canvas and return the latest graph edited by the user, or None before any edit.

    ``graph`` is ``{"nodes": [...], "edges": [...], "selected": id | None}`` (see
    ``frontend/canvas/src/types.ts``); the returned graph has the same shape. ``palette`` lists
    the node types the user can drag in (hidden when ``read_only``). Each edit reruns the script.
    Changing ``view_key`` asks the canvas to fit the whole graph into view again (for example
    after Python laid the graph out anew); ``fit_view`` only fits when the canvas first mounts.
    ``minimap`` defaults to shown while editing and hidden when ``read_only``: a preview fits
    the whole flow tightly (zooming out much further than the editor) and needs every pixel.

    Example::

        edited = flow_canvas(graph, palette=palette_items(), key="builder")
        if edited is not None:
            graph = edited
    """
    _check_graph(graph)
    if height <= 0:
        raise ValueError(f"height must be a positive number of pixels, got {height}")
    data = {
        "graph": {**graph, "selected": graph.get("selected")},
        "palette": list(palette or []),
        "read_only": read_only,
        "height": height,
        "fit_view": fit_view,
        "view_key": view_key,
        "minimap": (not read_only) if minimap is None else minimap,
    }
    result = _renderer()(
        key=key,
        data=data,
        default={"graph": None},
        on_graph_change=_ignore_change,
    )
    edited = result.get("graph")
    return edited if isinstance(edited, dict) else None


def latest_graph(key: str) -> dict[str, Any] | None:
    """The graph last edited on the canvas ``key``, or None before any edit.

    Readable before the canvas mounts in this run (Streamlit keeps component state in
    ``st.session_state[key]``), so a page can annotate the newest graph, for example with
    validation errors, and pass it to ``flow_canvas`` in the same run.
    """
    import streamlit as st

    state = st.session_state.get(key)
    graph = state.get("graph") if isinstance(state, Mapping) else None
    return graph if isinstance(graph, dict) else None


def asset_paths() -> dict[str, Any]:
    """The bundled files Streamlit serves, by name (for packaging checks and tests)."""
    folder = files("mawb.ui") / "canvas_assets"
    return {name: folder / name for name in ASSET_FILES}


@functools.cache
def _renderer() -> ComponentRenderer:
    # Imported here: streamlit is an optional extra and registration needs a running app.
    import streamlit as st

    return st.components.v2.component(
        COMPONENT_NAME, js="canvas.js", css="canvas.css", isolate_styles=True
    )


def _ignore_change() -> None:
    """Every state key needs an ``on_<key>_change`` callback; the value is read from the result."""


def _check_graph(graph: object) -> None:
    if not isinstance(graph, dict):
        raise TypeError(
            f"graph must be a dict with 'nodes' and 'edges', got {type(graph).__name__}"
        )
    for field in _GRAPH_KEYS:
        if not isinstance(graph.get(field), list):
            raise ValueError(f"graph['{field}'] must be a list")
    for index, node in enumerate(graph["nodes"]):
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            raise ValueError(f"graph['nodes'][{index}] needs a string 'id'")
        if not isinstance(node.get("type"), str):
            raise ValueError(f"graph['nodes'][{index}] ('{node['id']}') needs a string 'type'")
    for index, edge in enumerate(graph["edges"]):
        if not isinstance(edge, dict) or not all(
            isinstance(edge.get(field), str) for field in ("id", "source", "target")
        ):
            raise ValueError(f"graph['edges'][{index}] needs string 'id', 'source' and 'target'")
