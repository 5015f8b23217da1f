"""Set-based rendering of simple Liquid templates.

Rendering a million emails one by one in Python would dominate a tick, so templates made only
of text and `{{ attribute }}` / `{{ attribute | default: 'x' }}` outputs (the vast majority of
marketing copy) are translated into one DuckDB string expression, built with sqlglot, and
rendered for the whole cohort in SQL. Anything richer returns None and is rendered by
python-liquid at dispatch time. Both produce the same text (tested against each other).
"""

from __future__ import annotations

import re

from sqlglot import exp

_OUTPUT = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_SIMPLE = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\s*\|\s*default:\s*(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"))?$"
)


def liquid_to_sql(template: str, columns: set[str], alias: str = "c") -> str | None:
    """DuckDB SQL rendering `template` per row of `alias`, or None when it is not simple."""
    if "{%" in template:
        return None
    parts: list[exp.Expression] = []
    position = 0
    for match in _OUTPUT.finditer(template):
        if match.start() > position:
            parts.append(exp.Literal.string(template[position : match.start()]))
        simple = _SIMPLE.match(match.group(1))
        if simple is None:
            return None
        name = simple.group("name")
        default = simple.group("single")
        if default is None:
            default = simple.group("double")
        value: exp.Expression
        if name in columns:
            value = exp.cast(exp.column(name, table=alias, quoted=True), "VARCHAR")
        else:
            value = exp.null()
        if default is not None:
            # Liquid's default replaces nil, false and empty strings.
            value = exp.func("coalesce", exp.func("nullif", value, exp.Literal.string("")),
                             exp.Literal.string(default))
        parts.append(exp.func("coalesce", value, exp.Literal.string("")))
        position = match.end()
    if position < len(template):
        parts.append(exp.Literal.string(template[position:]))
    if not parts:
        return exp.Literal.string("").sql("duckdb")
    return exp.Concat(expressions=parts, safe=True).sql("duckdb") if len(parts) > 1 else \
        parts[0].sql("duckdb")
