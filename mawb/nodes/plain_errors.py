"""Pydantic errors in plain language: the rule a value breaks, never a regex or an error type.

One wording for every place that shows a params problem (the Builder's form under a field and
the Validation panel, `mawb validate`), so they can never disagree.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

PATTERNS = {
    r"^([01]\d|2[0-3]):[0-5]\d$": "a time of day as HH:MM, e.g. 09:30",
    r"^[a-z][a-z0-9_-]{0,62}$": "a connection name in lower case (letters, digits, _ or -)",
    r"^[a-z0-9][a-z0-9_-]{0,39}$": "a lower-case name of up to 40 letters, digits, _ or -",
    r"^[a-z0-9][a-z0-9_-]{0,62}$": "a lower-case name of letters, digits, _ or -",
}
"""What a pattern asks for, in words (a regex is never shown to the analyst)."""


def plain_message(item: Mapping[str, Any]) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) in plain language."""
    kind, context = item.get("type", ""), item.get("ctx") or {}
    message = str(item.get("msg", "")).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        if pattern.startswith("^(env|file|connection):"):
            return "should name a secret by reference, e.g. env:MY_SECRET"
        if ":" in pattern and "[0-5]" in pattern:
            return "should be a time of day as HH:MM, e.g. 09:30"
        return f"should be {PATTERNS.get(pattern, 'in the expected format')}"
    if kind in ("dict_type", "list_type", "model_type"):
        shape = "a list, e.g. [1, 2]" if kind == "list_type" else 'an object, e.g. {"a": 1}'
        return f"should be {shape}{_json_problem(item.get('input'))}"
    words = {
        "missing": "is required",
        "extra_forbidden": "is not a setting of this step",
        "int_parsing": "should be a whole number",
        "int_from_float": "should be a whole number",
        "int_type": "should be a whole number",
        "float_parsing": "should be a number",
        "float_type": "should be a number",
        "bool_parsing": "should be yes or no",
        "bool_type": "should be yes or no",
        "string_type": "should be text",
        "greater_than_equal": f"should be at least {context.get('ge')}",
        "greater_than": f"should be more than {context.get('gt')}",
        "less_than_equal": f"should be at most {context.get('le')}",
        "less_than": f"should be less than {context.get('lt')}",
        "string_too_short": "should not be empty" if context.get("min_length") == 1
        else f"should have at least {context.get('min_length')} characters",
        "too_short": "should not be empty" if context.get("min_length") == 1
        else f"should have at least {context.get('min_length')} items",
        "string_too_long": f"should have at most {context.get('max_length')} characters",
        "literal_error": f"should be one of {context.get('expected')}",
        "enum": f"should be one of {context.get('expected')}",
    }
    return words.get(kind, message)


def _json_problem(value: Any) -> str:
    """Where text meant as JSON stops being JSON (empty when it is not such text)."""
    if not isinstance(value, str):
        return ""
    try:
        json.loads(value)
    except json.JSONDecodeError as error:
        return f" (not valid JSON: {error.msg} at column {error.colno})"
    return ""
