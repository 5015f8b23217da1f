"""The node config panel, generated from each node type's pydantic params model.

No node type has hand-written UI: the field's type picks the input (checkbox, number, choice,
multi-choice, text, list, JSON), its default and description become the initial value and the
help text, and the params model itself reports the errors, shown under the field as the user
types. The same machinery edits the flow's
own settings (any pydantic model works). The pure half (`field_specs`, `initial_values`,
`params_from_values`, `field_errors`) is unit-tested; `render_config_panel` and
`render_model_inputs` only draw Streamlit widgets for it.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mawb import nodes

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TypeAlias

    from mawb.model import Node
    from mawb.nodes.base import NodeType

    Editable: TypeAlias = type[NodeType] | type[BaseModel]
    """A node type (its params model is edited) or any pydantic model (flow settings)."""

Kind = Literal["bool", "int", "float", "choice", "multichoice", "text", "longtext", "list", "json"]

LONG_TEXT_FIELDS = frozenset({"body", "sql", "text"})
"""Fields edited in a text area: message bodies and queries span lines."""
GENERAL = "_general"
"""Key of errors that belong to the node as a whole rather than one field."""


@dataclass(frozen=True)
class FieldSpec:
    """How one params field is edited."""

    name: str
    kind: Kind
    default: Any
    help: str
    optional: bool = False
    choices: tuple[Any, ...] = ()


def field_specs(editable: Editable) -> list[FieldSpec]:
    """One spec per field of the type's params model (or of a pydantic model such as the flow's
    Settings), in declaration order."""
    specs = []
    for name, info in _model(editable).model_fields.items():
        annotation, optional = _unwrap_optional(info.annotation)
        kind, choices = _kind(name, annotation)
        default = info.get_default(call_default_factory=True)
        specs.append(FieldSpec(name, kind, _plain(default), info.description or "", optional,
                               choices))
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


_PATTERNS = {
    r"^([01]\d|2[0-3]):[0-5]\d$": "a time of day as HH:MM, e.g. 09:30",
    r"^[a-z][a-z0-9_-]{0,62}$": "a connection name in lower case (letters, digits, _ or -)",
    r"^[a-z0-9][a-z0-9_-]{0,39}$": "a lower-case name of up to 40 letters, digits, _ or -",
}
"""What a pattern asks for, in words (a regex is never shown to the analyst)."""


def plain_message(item: Mapping[str, Any]) -> str:
    """One pydantic error in plain language: the rule, never the regex or the error type."""
    kind, context = item.get("type", ""), item.get("ctx") or {}
    message = str(item.get("msg", "")).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        if pattern.startswith("^(env|file|connection):"):
            return "should name a secret by reference, e.g. env:MY_SECRET"
        if ":" in pattern and "[0-5]" in pattern:
            return "should be a time of day as HH:MM, e.g. 09:30"
        return f"should be {_PATTERNS.get(pattern, 'in the expected format')}"
    words = {
        "missing": "is required",
        "extra_forbidden": "is not a setting of this step",
        "int_parsing": "should be a whole number",
        "int_from_float": "should be a whole number",
        "float_parsing": "should be a number",
        "bool_parsing": "should be yes or no",
        "greater_than_equal": f"should be at least {context.get('ge')}",
        "greater_than": f"should be more than {context.get('gt')}",
        "less_than_equal": f"should be at most {context.get('le')}",
        "less_than": f"should be less than {context.get('lt')}",
        "string_too_short": "should not be empty" if context.get("min_length") == 1
        else f"should have at least {context.get('min_length')} characters",
        "string_too_long": f"should have at most {context.get('max_length')} characters",
        "literal_error": f"should be one of {context.get('expected')}",
        "enum": f"should be one of {context.get('expected')}",
    }
    return words.get(kind, message)


def render_config_panel(node: Node, key_prefix: str) -> tuple[str | None, dict[str, Any]]:
    """Draw the inputs for ``node`` and return its (label, params) as the user left them.

    ``key_prefix`` must change whenever the node's params change outside this panel (a
    rollback, an import), so the inputs start again from the new values.
    """
    import streamlit as st

    if not nodes.has(node.type):
        st.warning(f"Unknown node type {node.type!r}: replace this step with a known one.")
        return node.label, dict(node.params)
    node_type = nodes.get(node.type)
    st.markdown(f"**{node_type.label}** · `{node.id}`")
    st.caption(node_type.help)
    label = st.text_input("Label", value=node.label or "", key=f"{key_prefix}::label",
                          placeholder=node_type.label, help="Name shown on the canvas")
    return (label.strip() or None), render_model_inputs(node_type, node.params, key_prefix)


def render_model_inputs(editable: Editable, current: Mapping[str, Any], key_prefix: str
                        ) -> dict[str, Any]:
    """Draw one input per field of ``editable`` starting from ``current``, show the model's
    errors under them, and return the values as the user left them."""
    start = initial_values(editable, current)
    values = {spec.name: _widget(spec, start[spec.name], f"{key_prefix}::{spec.name}")
              for spec in field_specs(editable)}
    params, unreadable = params_from_values(editable, values, current)
    problems = {**field_errors(editable, params), **unreadable}
    _show_errors(problems, values)
    return params


def _show_errors(problems: dict[str, str], values: Mapping[str, Any]) -> None:
    import streamlit as st

    for name, message in problems.items():
        where = "" if name == GENERAL or name not in values else f"**{name}**: "
        st.error(f"{where}{message}", icon=":material/error:")


def _widget(spec: FieldSpec, value: Any, key: str) -> Any:
    import streamlit as st

    label = spec.name.replace("_", " ").capitalize()
    common: dict[str, Any] = {"key": key, "help": spec.help or None}
    if spec.kind == "bool":
        return st.checkbox(label, value=bool(value), **common)
    if spec.kind in ("int", "float"):
        number = int if spec.kind == "int" else float
        start = None if value is None else number(value)
        return st.number_input(label, value=start, step=number(1),
                               format="%d" if spec.kind == "int" else "%g", **common)
    if spec.kind == "choice":
        # An optional choice left unset stays unset: looking at it must not pick the first.
        options = [None, *spec.choices] if spec.optional else list(spec.choices)
        index = options.index(value) if value in options else 0
        return st.selectbox(label, options, index=index,
                            format_func=lambda o: "(automatic)" if o is None else str(o),
                            **common)
    if spec.kind == "multichoice":
        chosen = [item for item in (value or []) if item in spec.choices]
        return st.multiselect(label, list(spec.choices), default=chosen, **common)
    if spec.kind in ("longtext", "json"):
        return st.text_area(label, value=value or "", height=110 if spec.kind == "json" else 90,
                            **common)
    return st.text_input(label, value=value or "", **common)


def _model(editable: Editable) -> type[BaseModel]:
    params_model = getattr(editable, "params_model", None)
    return params_model if params_model is not None else editable  # type: ignore[return-value]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) < len(get_args(annotation)) and len(args) == 1:
            return args[0], True
    return annotation, False


def _kind(name: str, annotation: Any) -> tuple[Kind, tuple[Any, ...]]:
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
        return ("longtext" if name in LONG_TEXT_FIELDS else "text"), ()
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        if get_origin(item) is Literal:
            return "multichoice", get_args(item)
        if item is str:
            return "list", ()
    return "json", ()


def _as_input(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == "list":
        return ", ".join(str(item) for item in value or [])
    if spec.kind == "json":
        if value is None:
            return ""
        return json.dumps(value, ensure_ascii=False, indent=None if _is_small(value) else 2)
    return value


def _from_input(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == "list":
        return [item.strip() for item in str(value or "").split(",") if item.strip()]
    if spec.kind == "json":
        text = str(value or "").strip()
        if not text:
            return None if spec.optional else spec.default
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if spec.kind in ("text", "longtext") and spec.optional and not str(value or "").strip():
        return None
    if spec.kind == "int" and value is not None:
        return int(value)
    return value


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
