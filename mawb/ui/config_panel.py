"""The node config panel, generated from each node type's pydantic params model.

No node type has hand-written UI: the field's type picks the input (checkbox, number with the
model's bounds, choice, multi-choice, time of day, text, list, `name = value` lines for
dicts, JSON for the rest), its default and description become the initial value and the
help text, and the params model itself reports the errors in plain words
(`mawb.nodes.plain_errors`, the wording the Validation panel uses too). The raw JSON of the
whole params stays one toggle away ("Edit as JSON"). An input that cannot be read (bad JSON,
a line without `=`) keeps the param as it was and becomes an `unreadable_input` error of the
draft's one validation (`validate_draft`), so the form and the Validation panel never
disagree. The same machinery edits the flow's own settings (any pydantic model works). The
pure half (`field_specs`, `initial_values`, `params_from_values`, `field_errors`) is
unit-tested; the widgets are drawn by `mawb.ui.form_widgets`.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mawb import nodes
from mawb.nodes.plain_errors import plain_message
from mawb.validate import Diagnostic, Report, Severity, validate_flow

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TypeAlias

    from mawb.model import Flow, Node
    from mawb.nodes.base import NodeType
    from mawb.ui.pickers import Vocabulary

    Editable: TypeAlias = type[NodeType] | type[BaseModel]
    """A node type (its params model is edited) or any pydantic model (flow settings)."""

Kind = Literal["bool", "int", "float", "choice", "multichoice", "text", "longtext", "list",
               "time", "dict", "json"]

LONG_TEXT_FIELDS = frozenset({"body", "sql", "text"})
"""Fields edited in a text area: message bodies and queries span lines."""
GENERAL = "_general"
"""Key of errors that belong to the node as a whole rather than one field."""
TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
UNITS = {"days": "days", "hours": "hours", "minutes": "minutes", "seconds": "seconds"}
"""Duration fields by the unit their name ends with (`timeout_days`, `hours`)."""
PROBLEMS_KEY = "mawb_form_problems"
"""Session slot of this rerun's unreadable inputs, taken by `validate_draft`."""


@dataclass(frozen=True)
class FieldSpec:
    """How one params field is edited."""

    name: str
    kind: Kind
    default: Any
    help: str
    optional: bool = False
    choices: tuple[Any, ...] = ()
    low: float | None = None  # inclusive bounds of a number, from the model (ge / le)
    high: float | None = None
    unit: str | None = None  # a duration's unit
    text_values: bool = False  # a dict whose values are always text (headers)

    @property
    def label(self) -> str:
        words = self.name.replace("_", " ").capitalize()
        if self.unit and not words.lower().endswith(self.unit):
            return f"{words} ({self.unit})"
        return words


def field_specs(editable: Editable) -> list[FieldSpec]:
    """One spec per field of the type's params model (or of a pydantic model such as the flow's
    Settings), in declaration order."""
    specs = []
    for name, info in _model(editable).model_fields.items():
        annotation, optional = _unwrap_optional(info.annotation)
        kind, choices = _kind(name, annotation, info.metadata)
        default = info.get_default(call_default_factory=True)
        low, high = _bounds(info.metadata)
        unit = next((u for end, u in UNITS.items() if name.endswith(end)), None)
        specs.append(FieldSpec(name, kind, _plain(default), info.description or "", optional,
                               choices, low, high, unit if kind in ("int", "float") else None,
                               kind == "dict" and get_args(annotation)[1:] == (str,)))
    return specs


def initial_values(editable: Editable, params: Mapping[str, Any]) -> dict[str, Any]:
    """The value each input starts with: the params as the model reads them (so model-level
    defaults apply, e.g. a fresh delay waits one day), else the raw value, else the default;
    list and JSON fields as the text the user edits."""
    try:
        effective = _plain(_model(editable).model_validate(dict(params)).model_dump(mode="json"))
    except ValidationError:
        effective = {}
    values = {}
    for spec in field_specs(editable):
        value = effective.get(spec.name, params.get(spec.name, spec.default))
        values[spec.name] = _as_input(spec, value)
    return values


def params_from_values(
    editable: Editable, values: Mapping[str, Any], original: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Params from the inputs' values, and the errors of inputs that cannot be read (bad JSON).

    Merely looking at a node never changes its params: with no input changed (compared with
    `initial_values`) the original params come back. After a change, every input that differs
    from its field default is written too, so values the model filled in (a fresh delay's one
    day) stay what the panel shows. Unreadable inputs keep their original value.
    """
    start = initial_values(editable, original)
    specs = [spec for spec in field_specs(editable) if spec.name in values]
    if all(values[spec.name] == start[spec.name] for spec in specs):
        return dict(original), {}
    params = dict(original)
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            value = _from_input(spec, values[spec.name])
        except ValueError as error:
            errors[spec.name] = str(error)
            continue
        if spec.name in original or value != spec.default:
            params[spec.name] = value
    return params, errors


def field_errors(editable: Editable, params: Mapping[str, Any]) -> dict[str, str]:
    """The model's complaints keyed by top-level field (GENERAL for model-wide ones)."""
    try:
        _model(editable).model_validate(dict(params))
    except ValidationError as error:
        found: dict[str, list[str]] = {}
        for item in error.errors():
            loc = item["loc"]
            name = str(loc[0]) if loc else GENERAL
            detail = ".".join(str(part) for part in loc[1:])
            message = plain_message(item)
            found.setdefault(name, []).append(f"{detail}: {message}" if detail else message)
        return {name: "; ".join(messages) for name, messages in found.items()}
    return {}


def unreadable_problems(node_id: str | None, problems: Mapping[str, str]) -> None:
    """Record this rerun's unreadable inputs of a node (None: the flow) for `validate_draft`."""
    import streamlit as st

    found = st.session_state.setdefault(PROBLEMS_KEY, {})
    found[node_id] = dict(problems)


def validate_draft(flow: Flow, columns: frozenset[str] | None = None,
                   report: Report | None = None) -> Report:
    """The draft's one validation: `validate_flow` (or its `report`, already worked out) plus
    the inputs of this rerun that could not be read (they kept the param as it was, so the
    flow alone would look valid)."""
    import streamlit as st

    found: dict[str | None, dict[str, str]] = st.session_state.pop(PROBLEMS_KEY, {})
    report = report if report is not None else validate_flow(flow, columns=columns)
    ids = {node.id for node in flow.nodes}
    extra = tuple(
        Diagnostic(Severity.ERROR, "unreadable_input", node_id,
                   "params" if name == GENERAL else f"params.{name}", message)
        for node_id, problems in found.items() if node_id is None or node_id in ids
        for name, message in problems.items())
    return Report(extra + report.diagnostics) if extra else report


def render_config_panel(node: Node, key_prefix: str, vocabulary: Vocabulary | None = None
                        ) -> tuple[str | None, dict[str, Any]]:
    """Draw the inputs for ``node`` and return its (label, params) as the user left them.

    ``key_prefix`` must change whenever the node's params change outside this panel (a
    rollback, an import), so the inputs start again from the new values. ``vocabulary`` (the
    workspace's events and attributes) feeds the pickers.
    """
    import streamlit as st

    from mawb.ui import form_widgets

    if not nodes.has(node.type):
        st.warning(f"Unknown node type {node.type!r}: replace this step with a known one.")
        return node.label, dict(node.params)
    node_type = nodes.get(node.type)
    st.markdown(f"**{node_type.label}** · `{node.id}`")
    st.caption(node_type.help)
    label = st.text_input("Label", value=node.label or "", key=f"{key_prefix}::label",
                          placeholder=node_type.label, help="Name shown on the canvas")
    if st.toggle("Edit as JSON", key=f"{key_prefix}::as_json",
                 help="The step's params as raw JSON (advanced)"):
        params, problems = form_widgets.json_editor(node.params, f"{key_prefix}::params_json")
        form_widgets.show_errors(field_errors(node_type, params) if not problems else {}, {})
    else:
        params, problems = render_model_inputs(node_type, node.params, key_prefix, vocabulary,
                                               with_unreadable=True)
    unreadable_problems(node.id, problems)
    return (label.strip() or None), params


def render_model_inputs(editable: Editable, current: Mapping[str, Any], key_prefix: str,
                        vocabulary: Vocabulary | None = None, *, with_unreadable: bool = False
                        ) -> Any:
    """Draw one input per field of ``editable`` starting from ``current``, show the model's
    errors under them, and return the values as the user left them (with the unreadable
    inputs' problems too when ``with_unreadable``)."""
    from mawb.ui import form_widgets

    start = initial_values(editable, current)
    event_fields = getattr(editable, "category", None) == "trigger"
    values = {spec.name: form_widgets.widget(spec, start[spec.name],
                                             f"{key_prefix}::{spec.name}", vocabulary,
                                             events=event_fields,
                                             conditions=_condition_fields(editable))
              for spec in field_specs(editable)}
    params, unreadable = params_from_values(editable, values, current)
    form_widgets.show_errors({**field_errors(editable, params), **unreadable}, values)
    return (params, unreadable) if with_unreadable else params


def render_flow_params(flow: Flow, prefix: str) -> dict[str, Any]:
    """The flow's params editor (`form_widgets.flow_params_editor`); unreadable JSON keeps the
    params as they were and is an error of the draft's validation."""
    from mawb.ui import form_widgets

    params, problem = form_widgets.flow_params_editor(flow.params, prefix)
    unreadable_problems(None, {GENERAL: f"Params: {problem}"} if problem else {})
    return params


def _condition_fields(editable: Editable) -> tuple[str, ...]:
    return tuple(getattr(editable, "condition_fields", ()))


def _model(editable: Editable) -> type[BaseModel]:
    params_model = getattr(editable, "params_model", None)
    return params_model if params_model is not None else editable  # type: ignore[return-value]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) < len(get_args(annotation)) and len(args) == 1:
            return args[0], True
    return annotation, False


def _bounds(metadata: Sequence[Any]) -> tuple[float | None, float | None]:
    low = next((m.ge for m in metadata if getattr(m, "ge", None) is not None), None)
    high = next((m.le for m in metadata if getattr(m, "le", None) is not None), None)
    return low, high


def _kind(name: str, annotation: Any, metadata: Sequence[Any] = ()) -> tuple[Kind, tuple[Any, ...]]:
    origin = get_origin(annotation)
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if annotation is float:
        return "float", ()
    if origin is Literal:
        return "choice", get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice", tuple(member.value for member in annotation)
    if annotation is str:
        if any(getattr(m, "pattern", None) == TIME_PATTERN for m in metadata):
            return "time", ()
        return ("longtext" if name in LONG_TEXT_FIELDS else "text"), ()
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        if get_origin(item) is Literal:
            return "multichoice", get_args(item)
        if item is str:
            return "list", ()
    if origin is dict and _scalar(get_args(annotation)[1:]):
        return "dict", ()
    return "json", ()


def _scalar(args: tuple[Any, ...]) -> bool:
    """Whether dict values are plain scalars (so `name = value` lines can hold them)."""
    if not args:
        return False
    options = get_args(args[0]) if get_origin(args[0]) in (Union, types.UnionType) else args
    return all(option in (str, int, float, bool, type(None)) for option in options)


def _as_input(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == "list":
        return ", ".join(str(item) for item in value or [])
    if spec.kind == "dict":
        return "\n".join(f"{key} = {_scalar_text(item)}" for key, item in (value or {}).items())
    if spec.kind == "json":
        if value is None:
            return ""
        return json.dumps(value, ensure_ascii=False, indent=None if _is_small(value) else 2)
    return value


def _scalar_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _from_input(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == "list":
        return [item.strip() for item in str(value or "").split(",") if item.strip()]
    if spec.kind == "dict":
        return _dict_from_lines(str(value or ""), spec)
    if spec.kind == "json":
        text = str(value or "").strip()
        if not text:
            return None if spec.optional else spec.default
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if spec.kind in ("text", "longtext", "time") and spec.optional and not str(value or "").strip():
        return None
    if spec.kind == "int" and value is not None:
        return int(value)
    return value


def _dict_from_lines(text: str, spec: FieldSpec) -> Any:
    """`name = value` lines (or a JSON object) as a dict; numbers, true/false and null are
    read as such, anything else is text."""
    if text.strip().startswith("{"):
        return _from_input(FieldSpec(spec.name, "json", spec.default, "", spec.optional), text)
    found: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, raw = line.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"line {number}: write it as name = value")
        found[name.strip()] = raw.strip() if spec.text_values else _scalar_value(raw.strip())
    return found


def _scalar_value(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, bool | int | float) or value is None else text


def _is_small(value: Any) -> bool:
    return len(json.dumps(value, ensure_ascii=False)) <= 60


def _plain(value: Any) -> Any:
    """Defaults as JSON-ready data (case models become dicts), so they compare with inputs."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
