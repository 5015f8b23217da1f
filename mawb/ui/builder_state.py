"""What the Builder page remembers between reruns, and every change to it, without Streamlit.

The page is a thin loop: read the canvas's latest graph, apply it here, draw. Keeping the state
transitions in plain Python makes them testable without a browser, and keeps one rule in one
place: the canvas's latest graph stays in Streamlit's session after it was applied, so an edit is
applied exactly once (`applied_graph`), and when Python replaces the flow (import, rollback,
template) the `generation` moves on, which gives the canvas and the config inputs fresh keys.

Every change to the draft during a rerun is one step of history (`record_edit`): undo and redo
swap whole flows, and move `form_generation` on so the config inputs show the restored values
while the canvas (which takes a changed graph from Python as it is) keeps its key. A history
step is the `Flow` object itself: flows are never changed in place (every edit makes a new one
with `model_copy`), so a snapshot costs a reference, not a copy.

A rerun must not pay for work its action does not need: the draft's JSON text (`flow_text`),
whether it is dirty and its validation report are worked out once per flow object and reused
until the draft changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mawb.layout import layered_positions
from mawb.model import Flow, FlowFileError, Layout, Settings, loads
from mawb.ui.flow_graph import graph_to_flow

if TYPE_CHECKING:
    from collections.abc import Mapping

STATE_KEY = "mawb_builder"
"""Session-state key of the page's `BuilderState`."""
SHARED_FLOW_KEY = "mawb_flow"
"""Session-state key through which pages hand a Flow to each other (gallery -> builder ->
experiments)."""
NEW_FLOW_ID = "new_flow"
CANVAS_KEY_PREFIX = "builder_canvas_"
TEXTS_KEPT = 3
HISTORY_LIMIT = 100
"""Undo steps kept per draft (each is one Flow; a flow of 200 steps is ~100 kB)."""


@dataclass
class BuilderState:
    """The flow being edited (a draft) and what the page needs to know about it."""

    flow: Flow
    based_on: int | None = None  # saved version the draft started from
    saved: Flow | None = None  # that version's content, to tell whether the draft changed
    selected: str | None = None
    generation: int = 0
    applied_graph: dict[str, Any] | None = None
    adopted: object | None = None  # the shared flow object taken over last
    notice: str | None = None
    compiled: tuple[Any, Any] | None = None  # (what it was compiled from, (zip, names, .py))
    imported: set[str] = field(default_factory=set)  # uploader file ids already imported
    draft_key: str = NEW_FLOW_ID  # the draft file this flow autosaves to (`mawb.ui.drafts`)
    undo: list[Flow] = field(default_factory=list)
    redo: list[Flow] = field(default_factory=list)
    form_generation: int = 0
    pending_choice: str | None = None  # an "open" waiting for the user to confirm a discard
    autosaved: str | None = None  # the flow JSON last written to the draft file
    titled: str | None = None  # the flow name the page title shows (drawn on full reruns)
    memo: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)
    """Per-flow results (dirty, report) by name: (the objects it was computed for, value)."""
    texts: list[tuple[Flow, str]] = field(default_factory=list, repr=False)

    @property
    def canvas_key(self) -> str:
        return f"{CANVAS_KEY_PREFIX}{self.generation}"

    @property
    def inputs_key(self) -> str:
        return f"builder_inputs_{self.generation}_{self.form_generation}"

    @property
    def dirty(self) -> bool:
        """Whether the draft behaves differently from the version it is based on."""
        if self.saved is None:
            return bool(self.flow.nodes)
        return bool(remembered(self, "dirty", (self.flow, self.saved),
                               lambda: _behaviour(self.saved) != _behaviour(self.flow)))


def remembered(state: BuilderState, name: str, inputs: tuple[Any, ...], compute: Any) -> Any:
    """`compute()`, reused while `inputs` are the very same objects (flows are immutable: a
    changed draft is a new object, so identity says "unchanged" for free), or equal sets and
    strings (cached store reads come back as copies)."""
    cached = state.memo.get(name)
    if cached is not None and len(cached[0]) == len(inputs) and all(
        a is b or (isinstance(a, frozenset | str) and a == b)
        for a, b in zip(cached[0], inputs, strict=True)
    ):
        return cached[1]
    value = compute()
    state.memo[name] = (inputs, value)
    return value


def flow_text(state: BuilderState, flow: Flow | None = None) -> str:
    """The JSON of `flow` (default: the draft), serialised once per flow object; the last few
    are kept (the draft before and after a rerun's edit, the autosaved one)."""
    target = state.flow if flow is None else flow
    for known, text in state.texts:
        if known is target:
            return text
    text = target.to_json()
    state.texts = [(target, text), *state.texts[:TEXTS_KEPT - 1]]
    return text


def _behaviour(flow: Flow | None) -> dict[str, Any]:
    # Layout is left out: opening a deployed flow lays it out, which is not an edit.
    return flow.model_dump(exclude={"version", "ui"}) if flow is not None else {}


def new_flow(flow_id: str = NEW_FLOW_ID) -> Flow:
    return Flow.new(flow_id, "New flow")


def with_layout(flow: Flow) -> Flow:
    """The flow with a layered layout when some node has no position yet (templates, imports
    written by hand); flows laid out by the user are left alone."""
    if all(node.id in flow.ui.positions for node in flow.nodes):
        return flow
    return flow.model_copy(update={"ui": Layout(positions=layered_positions(flow))}, deep=True)


def replace_flow(state: BuilderState, flow: Flow, *, based_on: int | None = None,
                 saved: Flow | None = None, notice: str | None = None) -> None:
    """Start editing another flow (open, import, rollback, template, saved version)."""
    state.flow = with_layout(flow)
    state.based_on = based_on
    state.saved = saved
    state.selected = None
    state.generation += 1
    state.applied_graph = None
    state.compiled = None
    state.notice = notice
    state.draft_key = flow.id
    state.undo, state.redo = [], []
    state.pending_choice = None
    state.autosaved = None


def apply_canvas_edit(state: BuilderState, graph: Mapping[str, Any] | None) -> bool:
    """Take the canvas's latest graph into the draft once; True when something was applied."""
    if graph is None or graph == state.applied_graph:
        return False
    state.applied_graph = copy.deepcopy(dict(graph))  # the caller may reuse its dict
    state.flow = graph_to_flow(graph, state.flow)
    selected = graph.get("selected")
    state.selected = selected if isinstance(selected, str) else None
    return True


def apply_node_config(state: BuilderState, node_id: str, label: str | None,
                      params: dict[str, Any]) -> bool:
    """Write the config panel's values into the draft; True when the node changed."""
    nodes = list(state.flow.nodes)
    for index, node in enumerate(nodes):
        if node.id == node_id:
            if node.label == label and node.params == params:
                return False
            nodes[index] = node.model_copy(update={"label": label, "params": params})
            state.flow = state.flow.model_copy(update={"nodes": nodes})
            return True
    return False


def apply_flow_fields(state: BuilderState, *, name: str, description: str, flow_id: str,
                      params: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Write the flow settings panel into the draft; settings the model rejects are kept as
    they were (the panel shows why). True when the draft changed."""
    update: dict[str, Any] = {"name": name, "description": description, "id": flow_id,
                              "params": params}
    try:
        update["settings"] = Settings.model_validate(settings)
    except ValidationError:
        pass
    changed = {key: value for key, value in update.items() if getattr(state.flow, key) != value}
    if changed:
        state.flow = state.flow.model_copy(update=changed)
    return bool(changed)


def auto_layout(state: BuilderState) -> None:
    """Lay the draft out left to right; the canvas is re-created so it fits the new picture."""
    state.flow = state.flow.model_copy(
        update={"ui": Layout(positions=layered_positions(state.flow))}, deep=True
    )
    state.generation += 1
    state.applied_graph = None


def adopt_shared_flow(state: BuilderState, shared: object) -> bool:
    """Open a flow another page handed over (``st.session_state["mawb_flow"]``) once."""
    if not isinstance(shared, Flow) or shared is state.adopted:
        return False
    state.adopted = shared
    replace_flow(state, shared.model_copy(deep=True),
                 notice=f"Opened {shared.name or shared.id}: save a version to keep it.")
    return True


def import_file(state: BuilderState, name: str, content: bytes) -> str | None:
    """Open an uploaded flow file (JSON, or YAML by extension) as a draft; the reason it could
    not be read (file and place named) or None on success."""
    fmt = "yaml" if name.lower().endswith((".yaml", ".yml")) else "json"
    try:
        flow = loads(content.decode("utf-8"), fmt)
    except UnicodeDecodeError:
        return f"{name} is not a UTF-8 text file"
    except FlowFileError as error:
        where = f" at {error.where}" if error.where else ""
        return f"{name}{where}: {error.detail}"
    replace_flow(state, flow, notice=f"Imported {name} as a draft of {flow.id}.")
    return None


def record_edit(state: BuilderState, before: Flow) -> bool:
    """After a rerun's edits: when the draft differs from `before`, make `before` one undo
    step (the redo list is dropped, as in any editor). True when something changed."""
    if before is state.flow or flow_text(state, before) == flow_text(state):
        return False
    state.undo.append(before)
    del state.undo[:-HISTORY_LIMIT]
    state.redo.clear()
    return True


def undo(state: BuilderState) -> bool:
    """Go back one step; False when there is nothing to undo."""
    if not state.undo:
        return False
    state.redo.append(state.flow)
    _restore(state, state.undo.pop())
    return True


def redo(state: BuilderState) -> bool:
    """Re-apply the step last undone; False when there is nothing to redo."""
    if not state.redo:
        return False
    state.undo.append(state.flow)
    _restore(state, state.redo.pop())
    return True


def _restore(state: BuilderState, flow: Flow) -> None:
    state.flow = flow
    if state.selected not in {node.id for node in flow.nodes}:
        state.selected = None
    state.form_generation += 1  # the config inputs must show the restored values
    state.compiled = None
