"""Type-check a flow's conditions against a workspace's contact columns before it runs.

Validation checks a condition's shape and names; only the store knows the columns' types.
Each condition (and the goal) is evaluated once over a single all-NULL row typed like the
`contacts` table: no contact data is read, yet DuckDB binds the types and folds the
constants, so `email > 5`, `engagement_score = 'abc'`, `date_diff('fortnight', ...)`,
`regexp_matches(email, '(')` or an overflowing constant are diagnostics naming node and field
instead of a node that fails every tick. What depends on values (`CAST(email AS INT)` over real
addresses) still fails only that node's cohort at run time (`run_stage`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb

from mawb.engine.cohort import contact_column
from mawb.engine.store import contact_column_names
from mawb.expr import ConditionError, referenced_columns, to_sql
from mawb.flowplan import node_params, plan
from mawb.validate import Diagnostic, Severity

if TYPE_CHECKING:
    from datetime import datetime

    from mawb.model import Flow

_TYPED_NULL_ROW = ("FROM (SELECT 1) AS one LEFT JOIN "
                   "(SELECT * FROM main.contacts LIMIT 0) AS c ON false")


def condition_diagnostics(connection: duckdb.DuckDBPyConnection, flow: Flow,
                          params: dict[str, Any], now: datetime) -> list[Diagnostic]:
    """One error diagnostic per condition DuckDB refuses for the contacts' column types."""
    found = []
    present = {name.lower() for name in contact_column_names(connection)}
    for node_id, field, text in _conditions(flow):
        if not {name.lower() for name in referenced_columns(text)} <= present:
            continue  # reads an attribute the flow itself writes: created at deploy, untyped yet
        problem = _probe(connection, text, {**flow.params, **params}, now)
        if problem:
            code = "bad_condition" if node_id else "bad_settings"
            found.append(Diagnostic(Severity.ERROR, code, node_id, field,
                                    f"fails for the workspace's column types: {problem}"))
    return found


def _conditions(flow: Flow) -> list[tuple[str | None, str, str]]:
    found: list[tuple[str | None, str, str]] = []
    planned = plan(flow)
    for node in flow.nodes:
        node_type, params = planned.types[node.id], node_params(flow, node.id)
        found += [(node.id, f"params.{field}", text)
                  for field, text in node_type.conditions(params).items()]
    if flow.settings.goal:
        found.append((None, "settings.goal", flow.settings.goal))
    return found


def _probe(connection: duckdb.DuckDBPyConnection, text: str, params: dict[str, Any],
           now: datetime) -> str | None:
    try:
        sql = to_sql(text, params, column=contact_column, now=now)
        connection.execute(f"SELECT coalesce(({sql}), false) {_TYPED_NULL_ROW}").fetchall()
    except (duckdb.DataError, duckdb.ProgrammingError, duckdb.NotSupportedError,
            ConditionError, RecursionError) as error:
        lines = str(error).strip().splitlines()
        return lines[0] if lines else type(error).__name__
    return None
