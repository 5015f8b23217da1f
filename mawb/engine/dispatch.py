"""Dispatch: the goal (enrollments that reached it leave converted), the outbox, and
completion of enrollments with no token left."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mawb.engine import outbox
from mawb.expr import to_sql
from mawb.flowplan import plan

if TYPE_CHECKING:
    from datetime import datetime

    import duckdb

    from mawb.model import Flow


def dispatch(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
             flow_params: dict[str, Any], goal: bool = True) -> None:
    if flow.settings.goal and goal:
        column = lambda name: _contact_column(name)  # noqa: E731
        reached = to_sql(flow.settings.goal, flow_params, column=column, now=now)
        connection.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE reached AS
            SELECT e.enrollment_id FROM enrollments e JOIN contacts c USING (contact_id)
            WHERE e.flow_id = ? AND e.version = ? AND e.status = 'active'
              AND coalesce(({reached}), false)
            """,
            [flow.id, flow.version],
        )
        connection.execute(
            "INSERT INTO node_log SELECT ?, flow_id, version, enrollment_id, contact_id, node_id, "
            "'converted', NULL, 'goal' FROM tokens "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM reached)",
            [now],
        )
        connection.execute(
            "DELETE FROM tokens WHERE enrollment_id IN (SELECT enrollment_id FROM reached)"
        )
        connection.execute(
            "UPDATE enrollments SET status = 'converted', exited_at = ?, exit_reason = 'goal' "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM reached)",
            [now],
        )
    outbox.dispatch(connection, flow, now, flow_params)
    complete(connection, flow, now, "all")


def _contact_column(name: str) -> Any:
    from sqlglot import exp

    return exp.column(name, table="c", quoted=True)


def complete(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
             scope: str) -> None:
    """Enrollments with no token left have reached the end of every path."""
    within = ("AND enrollment_id IN (SELECT enrollment_id FROM cohort)" if scope == "cohort"
              else "")
    ended = f"""
        WHERE flow_id = ? AND status = 'active' {within}
          AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.flow_id = ?
                          AND t.enrollment_id = enrollments.enrollment_id)"""
    if any(node_type.is_merge for node_type in plan(flow).types.values()):
        # A finished enrollment never reaches a merge again: its merge state goes with it.
        connection.execute("DELETE FROM merge_passed WHERE flow_id = ? AND enrollment_id IN "
                           f"(SELECT enrollment_id FROM enrollments {ended})",
                           [flow.id, flow.id, flow.id])
    connection.execute(
        "UPDATE enrollments SET status = 'completed', exited_at = ?, exit_reason = 'end of path' "
        + ended, [now, flow.id, flow.id])


__all__ = ["complete", "dispatch"]
