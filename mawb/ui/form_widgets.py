"""The Streamlit inputs of the generated forms (`mawb.ui.config_panel` decides what they edit).

One input per field kind: a checkbox, a number input bounded like the model, a select, a time
picker, a text box with the workspace's names as suggestions, `name = value` lines for dicts,
JSON for nested data; and the raw JSON editor of a whole step.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import streamlit as st

from mawb.ui.pickers import ATTRIBUTE_FIELDS, ATTRIBUTE_KEY_FIELDS, EVENT_FIELDS, Vocabulary

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mawb.ui.config_panel import FieldSpec

MAX_SUGGESTIONS = 12


def widget(spec: FieldSpec, value: Any, key: str, vocabulary: Vocabulary | None = None, *,
           events: bool = False, conditions: tuple[str, ...] = ()) -> Any:
    """Draw the input of one field and return its value (in the form's input shape)."""
    known = vocabulary or Vocabulary()
    common: dict[str, Any] = {"key": key, "help": spec.help or None}
    if events and spec.name in EVENT_FIELDS and spec.kind in ("text", "list"):
        return _event_picker(spec, value, known.events, common)
    if spec.name in ATTRIBUTE_FIELDS and spec.kind == "text" and known.attributes:
        return _pick_one(spec, value, known.attributes, common)
    if spec.kind == "bool":
        return st.checkbox(spec.label, value=bool(value), **common)
    if spec.kind in ("int", "float"):
        return _number(spec, value, common)
    if spec.kind == "choice":
        # An optional choice left unset stays unset: looking at it must not pick the first.
        options = [None, *spec.choices] if spec.optional else list(spec.choices)
        index = options.index(value) if value in options else 0
        return st.selectbox(spec.label, options, index=index,
                            format_func=lambda o: "(automatic)" if o is None else str(o),
                            **common)
    if spec.kind == "multichoice":
        chosen = [item for item in (value or []) if item in spec.choices]
        return st.multiselect(spec.label, list(spec.choices), default=chosen, **common)
    if spec.kind == "time":
        return _time(spec, value, common)
    if spec.kind == "dict":
        shown = _suggest(known.attributes, "Attributes") if spec.name in ATTRIBUTE_KEY_FIELDS \
            else ""
        common["help"] = f"{spec.help} One per line: name = value.{shown}".strip()
        return st.text_area(spec.label, value=value or "", height=90, **common,
                            placeholder="tier = gold")
    if spec.kind in ("longtext", "json"):
        return st.text_area(spec.label, value=value or "", height=110 if spec.kind == "json"
                            else 90, **common)
    typed = st.text_input(spec.label, value=value or "", **common)
    if spec.name in conditions and known.attributes:
        st.caption(f"Attributes you can use: {_names(known.attributes)}")
    return typed


def show_errors(problems: Mapping[str, str], values: Mapping[str, Any]) -> None:
    for name, message in problems.items():
        where = "" if name not in values else f"**{name}**: "
        st.error(f"{where}{message}", icon=":material/error:")


def json_editor(params: Mapping[str, Any], key: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The whole params as raw JSON; unreadable text keeps the params as they were."""
    from mawb.ui.config_panel import GENERAL

    text = st.text_area("Params (JSON)", value=json.dumps(dict(params), indent=2,
                                                          ensure_ascii=False),
                        height=220, key=key)
    try:
        parsed = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        problem = f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
    else:
        if isinstance(parsed, dict):
            return parsed, {}
        problem = 'should be a JSON object, e.g. {"days": 1}'
    st.error(problem, icon=":material/error:")
    return dict(params), {GENERAL: problem}


def _number(spec: FieldSpec, value: Any, common: dict[str, Any]) -> Any:
    number = int if spec.kind == "int" else float
    start = None if value is None else number(value)
    bounds: dict[str, Any] = {}
    # Bounds only while the value respects them: a value out of range (from a file) stays
    # visible, and the model says what is wrong with it.
    inside = start is None or ((spec.low is None or start >= spec.low)
                               and (spec.high is None or start <= spec.high))
    if inside and spec.low is not None:
        bounds["min_value"] = number(spec.low)
    if inside and spec.high is not None:
        bounds["max_value"] = number(spec.high)
    return st.number_input(spec.label, value=start, step=number(1),
                           format="%d" if spec.kind == "int" else "%g", **bounds, **common)


def _time(spec: FieldSpec, value: Any, common: dict[str, Any]) -> Any:
    """A time picker, or the text as written when it is no time (the model names the rule)."""
    try:
        start = dt.time.fromisoformat(value) if value else None
    except ValueError:
        return st.text_input(spec.label, value=str(value), **common)
    chosen = st.time_input(spec.label, value=start, step=dt.timedelta(minutes=15), **common)
    return chosen.strftime("%H:%M") if chosen is not None else None


def _event_picker(spec: FieldSpec, value: Any, events: tuple[str, ...],
                  common: dict[str, Any]) -> Any:
    """Events the workspace and the flow know, as choices; a new name can still be typed."""
    if spec.kind == "list":
        chosen = [item.strip() for item in str(value or "").split(",") if item.strip()]
        options = list(dict.fromkeys([*events, *chosen]))
        picked = st.multiselect(spec.label, options, default=chosen, accept_new_options=True,
                                placeholder="Pick or type event names", **common)
        return ", ".join(picked)
    return _pick_one(spec, value, events, common, placeholder="Pick or type an event name")


def _pick_one(spec: FieldSpec, value: Any, names: tuple[str, ...], common: dict[str, Any],
              placeholder: str = "Pick or type a name") -> Any:
    options = list(dict.fromkeys([*names, *([value] if value else [])]))
    index = options.index(value) if value in options else None
    picked = st.selectbox(spec.label, options, index=index, accept_new_options=True,
                          placeholder=placeholder, **common)
    return picked or ""


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(f"`{name}`" for name in names[:MAX_SUGGESTIONS])
    return shown + (f" and {len(names) - MAX_SUGGESTIONS} more" if len(names) > MAX_SUGGESTIONS
                    else "")


def _suggest(names: tuple[str, ...], what: str) -> str:
    return f" {what}: {', '.join(names[:MAX_SUGGESTIONS])}." if names else ""


def flow_params_editor(current: Mapping[str, Any], prefix: str
                       ) -> tuple[dict[str, Any], str | None]:
    """The flow's params: one typed input each, a slider over the range the Experiments page
    uses (`mawb.ui.param_ranges`), and the JSON of them all (to add or remove params) one
    toggle away. Returns the params and the problem of unreadable JSON, if any."""
    from mawb.ui.param_ranges import param_control

    if st.toggle("Edit params as JSON", key=f"{prefix}::flow_params_as_json",
                 help="Add or remove params; conditions refer to them as :name"):
        return _flow_params_json(current, prefix)
    if not current:
        st.caption("No params yet: switch on **Edit params as JSON** to declare tunable knobs, "
                   'e.g. {"engagement_threshold": 0.7}; conditions use them as '
                   ":engagement_threshold and the Experiments page turns them into sliders.")
    params: dict[str, Any] = {}
    for name, value in current.items():
        key = f"{prefix}::flow_param::{name}"
        # The range is fixed when the input first shows (from the value then), so moving the
        # slider does not move its own ends.
        control = st.session_state.setdefault(f"{key}::range", param_control(name, value))
        if control.kind == "bool":
            params[name] = st.checkbox(name, value=bool(value), key=key)
        elif control.kind in ("int", "float"):
            number = int if control.kind == "int" else float
            low, high = number(min(control.low, value)), number(max(control.high, value))
            params[name] = number(st.slider(name, low, high, number(value),
                                            number(control.step) or number(1), key=key,
                                            help="The range the Experiments page sweeps"))
        else:
            params[name] = st.text_input(name, value=str(value), key=key)
    return params, None


def _flow_params_json(current: Mapping[str, Any], prefix: str
                      ) -> tuple[dict[str, Any], str | None]:
    text = st.text_input("Params (JSON)", value=json.dumps(dict(current)),
                         key=f"{prefix}::flow_params",
                         help='Tunable knobs, e.g. {"engagement_threshold": 0.7}; '
                         "conditions refer to them as :engagement_threshold")
    try:
        params = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        problem = f"not valid JSON ({error.msg} at column {error.colno})"
    else:
        if isinstance(params, dict) and all(
                isinstance(value, bool | int | float | str) for value in params.values()):
            return params, None
        problem = 'an object of numbers, strings or booleans, e.g. {"limit": 3}'
    st.error(f"Params: {problem}", icon=":material/error:")
    return dict(current), problem
