"""Conditions are checked against the allow-list and the generated SQL really runs in DuckDB.

Every accepted condition is compiled with `to_sql` and executed against a small in-memory
contacts table; the expected rows come from the same predicate written in plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from mawb.expr import (
    ALLOWED_FUNCTIONS,
    Condition,
    ConditionError,
    check_condition,
    parse_condition,
    referenced_columns,
    to_sql,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

NOW = datetime(2024, 3, 15, 9, 30)
TODAY = NOW.date()


@dataclass(frozen=True)
class Contact:
    id: int
    score: float | None
    engagement_score: float | None
    lifecycle: str
    industry: str | None
    email: str
    phone: str | None
    unsubscribed: bool | None
    signup_date: date
    last_name: str


CONTACTS = [
    Contact(1, 12.0, 0.9, "lead", "SaaS", "ann@acme.com", "+1555", False, date(2024, 3, 5),
            "O'Brien"),
    Contact(2, None, 0.2, "lead", "Fintech", "bob@other.io", None, False, date(2024, 3, 13),
            "Smith"),
    Contact(3, 55.5, 0.75, "customer", "retail", "cy@acme.com", "+44", True, date(2023, 12, 20),
            "Lee"),
    Contact(4, 3.0, None, "lead", None, "dee@ACME.com", None, None, date(2024, 3, 8), "D'Arcy"),
    Contact(5, 80.0, 0.5, "churned", "saas ", "eve@corp.org", "+33", False, TODAY, "Zed"),
]  # fmt: skip

COLUMNS = [
    ("id", "INTEGER"), ("score", "DOUBLE"), ("engagement_score", "DOUBLE"),
    ("lifecycle", "VARCHAR"), ("industry", "VARCHAR"), ("email", "VARCHAR"), ("phone", "VARCHAR"),
    ("unsubscribed", "BOOLEAN"), ("signup_date", "DATE"), ("last_name", "VARCHAR"),
]  # fmt: skip


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE contacts (" + ", ".join(f"{n} {t}" for n, t in COLUMNS) + ")")
    placeholders = ", ".join("?" for _ in COLUMNS)
    for contact in CONTACTS:
        values = [getattr(contact, name) for name, _ in COLUMNS]
        connection.execute(f"INSERT INTO contacts VALUES ({placeholders})", values)
    yield connection
    connection.close()


def select_ids(con: duckdb.DuckDBPyConnection, where: str, table: str = "contacts") -> list[int]:
    return [
        row[0]
        for row in con.execute(f"SELECT id FROM {table} WHERE {where} ORDER BY id").fetchall()
    ]


def expect(predicate: Callable[[Contact], bool]) -> list[int]:
    return [c.id for c in CONTACTS if predicate(c)]


def at_midnight(day: date) -> datetime:
    return datetime.combine(day, time())


ACCEPTED: list[tuple[str, dict[str, object], Callable[[Contact], bool]]] = [
    ("engagement_score > :engagement_threshold", {"engagement_threshold": 0.7},
     lambda c: c.engagement_score is not None and c.engagement_score > 0.7),
    ("lifecycle = 'lead' AND lower(industry) IN ('saas','fintech')", {},
     lambda c: c.lifecycle == "lead" and (c.industry or "").lower() in ("saas", "fintech")),
    ("signup_date < current_date - INTERVAL 7 DAY", {},
     lambda c: c.signup_date < TODAY - timedelta(7)),
    ("signup_date < current_date - INTERVAL '7 days'", {},
     lambda c: c.signup_date < TODAY - timedelta(7)),
    ("coalesce(score, 0) BETWEEN 10 AND :max_score", {"max_score": 60},
     lambda c: 10 <= (c.score or 0) <= 60),
    ("email LIKE '%@acme.com'", {}, lambda c: c.email.endswith("@acme.com")),
    ("email ILIKE '%@acme.com'", {}, lambda c: c.email.lower().endswith("@acme.com")),
    ("email NOT LIKE '%acme%'", {}, lambda c: "acme" not in c.email),
    ("phone IS NOT NULL", {}, lambda c: c.phone is not None),
    ("industry IS NULL", {}, lambda c: c.industry is None),
    ("NOT unsubscribed", {}, lambda c: c.unsubscribed is False),
    ("unsubscribed", {}, lambda c: c.unsubscribed is True),
    ("unsubscribed IS NOT TRUE", {}, lambda c: c.unsubscribed is not True),
    ("coalesce(unsubscribed, false) = false", {}, lambda c: not c.unsubscribed),
    ("score >= 10 OR engagement_score < 0.3", {},
     lambda c: (c.score or 0) >= 10 or (c.engagement_score is not None
          and c.engagement_score < 0.3)),
    ("(score > 10) AND NOT (industry = 'retail')", {},
     lambda c: c.score is not None and c.score > 10 and c.industry is not None
          and c.industry != "retail"),
    ("score % 2 = 0", {}, lambda c: c.score is not None and c.score % 2 == 0),
    ("score * 2 - 1 > 20 AND score / 4 < 20", {},
     lambda c: c.score is not None and 10.5 < c.score < 80),
    ("score - :offset > 150", {"offset": -100},
     lambda c: c.score is not None and c.score + 100 > 150),
    ("score <> 12 AND score != 3", {}, lambda c: c.score is not None and c.score not in (12, 3)),
    ("score NOT BETWEEN 5 AND 60", {}, lambda c: c.score is not None and not 5 <= c.score <= 60),
    ("lifecycle NOT IN ('lead', 'customer')", {},
     lambda c: c.lifecycle not in ("lead", "customer")),
    ("engagement_score IN (0.9, :other)", {"other": 0.5},
     lambda c: c.engagement_score in (0.9, 0.5)),
    ("date_diff('day', signup_date, current_date) >= 7", {},
     lambda c: (TODAY - c.signup_date).days >= 7),
    ("datediff('day', signup_date, current_date) < 3", {},
     lambda c: (TODAY - c.signup_date).days < 3),
    ("extract(year from signup_date) = 2024", {}, lambda c: c.signup_date.year == 2024),
    ("date_part('month', signup_date) = 3", {}, lambda c: c.signup_date.month == 3),
    ("date_trunc('month', signup_date) = DATE '2024-03-01'", {},
     lambda c: c.signup_date.replace(day=1) == date(2024, 3, 1)),
    ("signup_date >= :since", {"since": date(2024, 3, 6)},
     lambda c: c.signup_date >= date(2024, 3, 6)),
    ("now() - INTERVAL 3 DAY > signup_date", {},
     lambda c: NOW - timedelta(3) > at_midnight(c.signup_date)),
    ("current_timestamp > signup_date + INTERVAL :days DAY", {"days": 5},
     lambda c: NOW > at_midnight(c.signup_date) + timedelta(5)),
    ("starts_with(email, 'a') OR ends_with(email, '.org')", {},
     lambda c: c.email.startswith("a") or c.email.endswith(".org")),
    ("contains(lower(email), 'acme')", {}, lambda c: "acme" in c.email.lower()),
    ("regexp_matches(email, '^[a-c]')", {}, lambda c: c.email[0] in "abc"),
    ("length(trim(industry)) = 4", {},
     lambda c: c.industry is not None and len(c.industry.strip()) == 4),
    ("upper(lifecycle) = 'LEAD'", {}, lambda c: c.lifecycle.upper() == "LEAD"),
    ("abs(score - 50) < 10", {}, lambda c: c.score is not None and abs(c.score - 50) < 10),
    ("round(engagement_score * 10) = 9", {},
     lambda c: c.engagement_score is not None and round(c.engagement_score * 10) == 9),
    # DuckDB's least/greatest skip NULL arguments.
    ("least(score, 50) = 50", {}, lambda c: c.score is None or c.score >= 50),
    ("greatest(coalesce(score, 0), 50) = 50", {}, lambda c: (c.score or 0) <= 50),
    ("CASE WHEN lifecycle = 'lead' THEN score > 5 ELSE engagement_score > 0.6 END", {},
     lambda c: (c.score is not None and c.score > 5) if c.lifecycle == "lead"
     else (c.engagement_score is not None and c.engagement_score > 0.6)),
    ("CAST(score AS INT) = 12", {}, lambda c: c.score == 12),
    ("score::double > 50", {}, lambda c: c.score is not None and c.score > 50),
    ("TRY_CAST(score AS VARCHAR) = '12.0'", {}, lambda c: c.score == 12.0),
    ("true", {}, lambda c: True),
]  # fmt: skip


@pytest.mark.parametrize(("text", "params", "predicate"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_condition_runs_in_duckdb(
    con: duckdb.DuckDBPyConnection,
    text: str,
    params: dict[str, object],
    predicate: Callable[[Contact], bool],
) -> None:
    condition = parse_condition(text)
    assert condition.params == frozenset(params)
    assert check_condition(text, params=params, columns=[name for name, _ in COLUMNS]) == []
    assert select_ids(con, to_sql(condition, params, now=NOW)) == expect(predicate)


def test_accepted_conditions_select_varied_rows(con: duckdb.DuckDBPyConnection) -> None:
    # Guards the table above against degenerate data where every condition matches everything.
    results = {tuple(expect(predicate)) for _, _, predicate in ACCEPTED}
    assert len(results) > 15


REJECTED = [
    ("1=1; DROP TABLE x", "';' is not allowed"),
    ("x > 1;", "';' is not allowed"),
    ("DROP TABLE x", "not a DROP statement"),
    ("SELECT 1", "not a SELECT statement"),
    ("score > (SELECT 1)", "subqueries (SELECT) are not allowed"),
    ("x IN (SELECT id FROM contacts)", "subqueries"),
    ("'a' || (select 1)", "subqueries"),
    ("exists(select 1)", "subqueries"),
    ("read_csv('/etc/passwd') IS NOT NULL", "function read_csv() is not allowed"),
    ("pg_sleep(1)", "function pg_sleep() is not allowed"),
    ("getvariable('x') = 1", "function getvariable()"),
    ("if(score > 1, true, false)", "if() is not allowed"),
    ("score > 1 -- comment", "comments are not allowed"),
    ("score > 1 /* x */", "comments are not allowed"),
    ("/* x */ score > 1", "comments are not allowed"),
    ("-- only a comment", "comments are not allowed"),
    ("c.score > 1", "`c.score` must be a plain column name"),
    ("main.c.score > 1", "must be a plain column name"),
    ("*", "'*' is not allowed"),
    ("score >", "syntax error"),
    ("score > 'unterminated", "could not read condition"),
    ("", "condition is empty"),
    ("   ", "condition is empty"),
    ("score > ?", "parameter '?' is not allowed"),
    ("score > $1", "parameter '$' is not allowed"),
    ("score > $limit", "parameter '$' is not allowed"),
    ("score > : limit", "no space after ':'"),
    ("1 + 1", "condition must be a comparison or boolean expression"),
    ("'lead'", "condition must be a comparison or boolean expression"),
    ("lower(industry)", "condition must be a comparison or boolean expression"),
    ("1 AND unsubscribed", "condition must be a comparison or boolean expression"),
    ("score > 1 trailing", "trailing text"),
    ("industry IN (lifecycle, email)", "IN list items must be literals"),
    ("score::INT[] IS NULL", "cast to INT[] is not allowed"),
    ("email[1] = 'a'", "subscripts"),
    ("'a' || 'b' = 'ab'", "string concatenation"),
    ("x IS NOT DISTINCT FROM 1", "DISTINCT FROM"),
    ("(" * 300 + "score" + ")" * 300 + " > 1", "nested too deeply"),
    ("score > " + "1 + " * 3000 + "1", "longer than"),
]


@pytest.mark.parametrize(("text", "fragment"), REJECTED, ids=[r[0][:40] for r in REJECTED])
def test_rejected_condition_names_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as raised:
        parse_condition(text)
    assert fragment in raised.value.message
    assert check_condition(text) == [raised.value.message]


def test_rejects_text_that_is_not_a_string() -> None:
    assert check_condition(42) == ["condition must be text, not int"]  # type: ignore[arg-type]


def test_string_param_with_quote_binds_as_a_literal(con: duckdb.DuckDBPyConnection) -> None:
    sql = to_sql("last_name = :name", {"name": "O'Brien"})
    assert select_ids(con, sql) == [1]
    hostile = "x' OR '1'='1"
    assert select_ids(con, to_sql("last_name = :name", {"name": hostile})) == []


def test_missing_param_is_named() -> None:
    with pytest.raises(ConditionError, match=":max_score"):
        to_sql("score BETWEEN :min_score AND :max_score", {"min_score": 1})


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), [1, 2], {"a": 1}]
)
def test_unusable_param_value_is_rejected(value: object) -> None:
    with pytest.raises(ConditionError, match=":limit"):
        to_sql("score > :limit", {"limit": value})


def test_none_and_bool_params_bind(con: duckdb.DuckDBPyConnection) -> None:
    assert select_ids(con, to_sql("unsubscribed = :flag", {"flag": True})) == [3]
    assert select_ids(con, to_sql("coalesce(score, :fallback) IS NULL", {"fallback": None})) == [2]


def test_check_condition_reports_unknown_params_and_columns() -> None:
    problems = check_condition(
        "Score > :threshold AND tier = :tier", params={"threshold": 1}, columns=["score", "email"]
    )
    assert problems == ["unknown parameter :tier", "unknown column 'tier'"]


def test_columns_and_params_are_collected() -> None:
    condition = parse_condition("Score > :a AND lower(email) LIKE :b OR score IS NULL")
    assert isinstance(condition, Condition)
    assert condition.columns == {"Score", "email", "score"}
    assert condition.params == {"a", "b"}
    assert referenced_columns('"Signup Date" < current_date') == {"Signup Date"}


def test_column_mapper_rewrites_every_reference(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE contact_json AS "
        "SELECT id, json_object('score', score, 'lifecycle', lifecycle) AS attributes FROM contacts"
    )

    def from_json(name: str) -> exp.Expression:
        path = exp.Literal.string(f"$.{name}")
        return exp.Anonymous(
            this="json_extract_string", expressions=[exp.column("attributes"), path]
        )

    text = "lifecycle = 'lead' AND TRY_CAST(score AS DOUBLE) + 0 > 5"
    sql = to_sql(text, column=from_json)
    assert "json_extract_string" in sql.lower()
    expected = expect(lambda c: c.lifecycle == "lead" and c.score is not None and c.score > 5)
    assert select_ids(con, sql, table="contact_json") == expected


def test_column_mapper_keeps_precedence_of_compound_replacements(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Mapping score to `score + 1` must not turn `score * 2` into `score + 1 * 2`.
    sql = to_sql("score * 2 > 30", column=lambda name: exp.column(name) + 1)
    assert select_ids(con, sql) == expect(lambda c: c.score is not None and (c.score + 1) * 2 > 30)


def test_column_mapper_applies_to_a_bare_boolean_column(con: duckdb.DuckDBPyConnection) -> None:
    sql = to_sql("unsubscribed", column=lambda name: exp.column(name, table="c", quoted=True))
    assert sql == '"c"."unsubscribed"'
    assert select_ids(con, sql, table="contacts AS c") == [3]


def test_virtual_clock_replaces_current_date_and_timestamp(con: duckdb.DuckDBPyConnection) -> None:
    text = "signup_date >= current_date - INTERVAL 7 DAY AND now() > signup_date"
    later = NOW + timedelta(days=30)
    assert select_ids(con, to_sql(text, now=NOW)) == expect(
        lambda c: TODAY - timedelta(7) <= c.signup_date and at_midnight(c.signup_date) < NOW
    )
    assert select_ids(con, to_sql(text, now=later)) == []
    assert "2024-03-15" in to_sql("current_date = signup_date", now=NOW)


def test_virtual_clock_with_a_time_zone_compiles_to_timestamptz(
    con: duckdb.DuckDBPyConnection,
) -> None:
    aware = datetime(2024, 3, 16, 23, 0, tzinfo=UTC)
    sql = to_sql("now() > signup_date AND current_date = DATE '2024-03-16'", now=aware)
    assert "TIMESTAMPTZ" in sql
    assert select_ids(con, sql) == [c.id for c in CONTACTS]


def test_column_mapper_may_return_one_shared_expression(con: duckdb.DuckDBPyConnection) -> None:
    shared = exp.column("score")
    sql = to_sql("score > 10 AND score < 60", column=lambda name: shared)
    assert select_ids(con, sql) == expect(lambda c: c.score is not None and 10 < c.score < 60)


def test_without_virtual_clock_the_real_clock_is_used(con: duckdb.DuckDBPyConnection) -> None:
    sql = to_sql("signup_date <= current_date")
    assert "CURRENT_DATE" in sql
    (real_today,) = con.execute("SELECT current_date").fetchall()[0]
    assert select_ids(con, sql) == expect(lambda c: c.signup_date <= real_today)


def test_allowed_functions_are_documented() -> None:
    import mawb.expr

    assert {"lower", "coalesce", "date_trunc", "regexp_matches"} <= ALLOWED_FUNCTIONS
    assert all(name in (mawb.expr.__doc__ or "") for name in ALLOWED_FUNCTIONS)


TOKENS = [
    "score", "engagement_score", "lifecycle", "email", "unsubscribed", "signup_date", ":p",
    "1", "-2.5", "'lead'", "'%a%'", "NULL", "TRUE", "=", "<>", "!=", "<", ">=", "+", "-", "*",
    "/", "%", "AND", "OR", "NOT", "(", ")", ",", "IN", "BETWEEN", "LIKE", "ILIKE", "IS", "CASE",
    "WHEN", "THEN", "ELSE", "END", "CAST", "AS", "INT", "INTERVAL", "DAY", "current_date",
    "now()", "lower(", "coalesce(", "date_diff(", "SELECT", ";", "--", "/*", "*/", "?", "$1",
    ":", "::", "||", "[", "]", "'", '"', "c.", "read_csv(",
]  # fmt: skip


def assert_returns_messages(text: str) -> None:
    problems = check_condition(text, params={"p": 1}, columns=["score"])
    assert isinstance(problems, list)
    assert all(isinstance(problem, str) and problem for problem in problems)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_never_raises(text: str) -> None:
    assert_returns_messages(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14))
def test_random_token_soup_never_raises(tokens: list[str]) -> None:
    text = " ".join(tokens)
    assert_returns_messages(text)
    # Whatever check_condition accepts must compile without errors.
    if not check_condition(text):
        to_sql(text, {"p": 1}, now=NOW)
