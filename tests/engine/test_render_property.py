"""The SQL fast path and python-liquid render every simple template to the same text.

Random templates (text, `{{ name }}`, `{{ name | default: '...' }}`) over typed contact columns
(text, double, integer, boolean, with NULLs) and flow params (strings, numbers, booleans) are
rendered both ways: set-based through `liquid_to_sql` in DuckDB, and by python-liquid over the
values as DuckDB returns them (what `outbox.render_pending` does). They must agree exactly.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mawb.engine.render import Template as TemplateField
from mawb.engine.render import column_types, liquid_to_sql, render_fields
from mawb.personalize import render

COLUMNS = {"first_name": "VARCHAR", "score": "DOUBLE", "visits": "BIGINT", "vip": "BOOLEAN",
           "city": "VARCHAR"}
PARAMS = ("promo", "threshold", "launch", "flag")
NAMES = (*COLUMNS, *PARAMS, "missing")

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="{}%\x00"),
               max_size=12)
default_text = st.text(st.characters(blacklist_categories=("Cs",),
                                     blacklist_characters="{}%'\"\x00\\"), max_size=6)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 50.0, 0.1, 1e16, 1e-7, 123456789.125, 2.5e20])
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "first_name": st.none() | st.just("") | text,
    "score": st.none() | floats,
    "visits": st.none() | st.integers(-(2**63), 2**63 - 1),
    "vip": st.none() | st.booleans(),
    "city": st.none() | st.sampled_from(["", "Lyon", "São Paulo", "  "]),
}
param_values = st.none() | st.booleans() | st.integers(-10**6, 10**6) | floats | text


@st.composite
def templates(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["text", "output", "default"]))
        if kind == "text":
            parts.append(draw(text))
            continue
        name = draw(st.sampled_from(NAMES))
        space = draw(st.sampled_from(["", " "]))
        if kind == "output":
            parts.append(f"{{{{{space}{name}{space}}}}}")
        else:
            quote = draw(st.sampled_from(["'", '"']))
            parts.append(f"{{{{ {name} | default: {quote}{draw(default_text)}{quote} }}}}")
    return "".join(parts)


@pytest.fixture(scope="module")
def store() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    columns = ", ".join(f'"{name}" {dtype}' for name, dtype in COLUMNS.items())
    connection.execute(f"CREATE TABLE contacts (contact_id VARCHAR, {columns})")
    return connection


def _as_stored(connection: duckdb.DuckDBPyConnection, contact: dict[str, Any]) -> None:
    connection.execute("DELETE FROM contacts")
    connection.execute(
        f"INSERT INTO contacts VALUES ('c1', {', '.join('?' for _ in COLUMNS)})",
        [contact[name] for name in COLUMNS])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=templates(), contact=st.fixed_dictionaries(VALUES),
       params=st.dictionaries(st.sampled_from(PARAMS), param_values, max_size=4))
def test_sql_and_liquid_render_the_same(store: duckdb.DuckDBPyConnection, template: str,
                                        contact: dict[str, Any], params: dict[str, Any]) -> None:
    _as_stored(store, contact)
    sql = liquid_to_sql(template, column_types(store), params=params)
    assert sql is not None, f"a simple template must take the SQL path: {template!r}"
    row = store.execute(f"SELECT {sql} FROM contacts c").fetchone()
    assert row is not None
    found = store.execute("SELECT * FROM contacts").fetchone()
    names = [column[0] for column in store.description or []]
    stored = dict(zip(names, found or (), strict=True))
    expected = render(template, {**params, **stored})
    assert row[0] == expected, (template, stored, params)


def test_params_render_in_sql_like_in_liquid(store: duckdb.DuckDBPyConnection) -> None:
    """The reproduction of the issue: `{{ promo }}` was empty in SQL, right with a filter."""
    _as_stored(store, {"first_name": "Ada", "score": 50.0, "visits": 3, "vip": False,
                       "city": None})
    params = {"promo": "SAVE10", "threshold": 0.7, "launch": True}
    template = "Code {{ promo }} at {{ threshold }} ({{ launch }}) {{ vip | default: 'no' }}"
    sql = liquid_to_sql(template, column_types(store), params=params)
    assert sql is not None
    row = store.execute(f"SELECT {sql} FROM contacts c").fetchone()
    assert row == ("Code SAVE10 at 0.7 (true) no",)
    assert render("Code {{ promo | upcase }}", params) == "Code SAVE10"


@pytest.mark.parametrize("template", [
    "{{ first_name | upcase }}",  # a filter other than default
    "{% if vip %}VIP{% endif %}",  # a tag
    "Hi {{- first_name }}",  # whitespace control trims the text around it
    "{{ first_name",  # does not parse: left for python-liquid to report
    "{{ attributes.plan }}",  # a dotted path
])
def test_rich_templates_are_left_to_python(store: duckdb.DuckDBPyConnection,
                                           template: str) -> None:
    assert liquid_to_sql(template, column_types(store), params={}) is None


def test_columns_printed_differently_fall_back(store: duckdb.DuckDBPyConnection) -> None:
    """A FLOAT or TIMESTAMP prints differently in DuckDB and Python: not rendered in SQL."""
    assert liquid_to_sql("{{ x }}", {"x": "FLOAT"}) is None
    assert liquid_to_sql("{{ x }}", {"x": "TIMESTAMP"}) is None
    assert liquid_to_sql("{{ x }}", {"x": "DOUBLE"}) is not None


def test_render_fields_nests_json_payloads() -> None:
    spec = {"body": TemplateField("Hi {{ first_name }}"),
            "payload": {"url": TemplateField("https://x.example/{{ promo }}")}}
    fields = render_fields(spec, {"first_name": "Ada"}, {"promo": "p1"})
    assert fields["body"] == "Hi Ada"
    assert fields["payload"] == '{"url":"https://x.example/p1"}'
