"""Stage transactions: ingest, one node's cohort step, or dispatch — each at most once per tick.

Each stage is one transaction that also records itself in `runs`, and a stage already recorded
for that flow version and tick time is skipped: a crash anywhere loses nothing, and running the
interrupted tick again repeats nothing. A node whose logic fails on the data fails only its own
cohort (`StageFailed`).
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
from pydantic import ValidationError

from mawb import flowplan, nodes
from mawb.engine import enroll
from mawb.engine.cohort import Cohort, apply, ended_paths, prepare
from mawb.engine.dispatch import complete, dispatch
from mawb.engine.ingest import ingest
from mawb.engine.steps import StepError, step_for
from mawb.engine.store import transaction
from mawb.expr import ConditionError
from mawb.nodes.base import Category
from mawb.query import QueryError

if TYPE_CHECKING:
    from mawb.model import Flow

INGEST = "_ingest"
DISPATCH = "_dispatch"


class StageFailed(UserWarning):
    """A stage whose flow logic failed at run time (a condition on bad data, a query).

    Its transaction was rolled back and only its own cohort was marked failed: the enrollments
    at the node end as `failed` (exit_reason names node and error), node_log records why, and
    `runs` holds the stage as `failed` with the error. The rest of the tick goes on; callers
    that print (the CLI) turn these warnings into one `warning:` line each."""


# Failures of the flow's own logic on this data; engine errors (I/O, conflicts) still raise.
RUNTIME_FAILURES: tuple[type[BaseException], ...] = (
    duckdb.DataError, duckdb.ProgrammingError, duckdb.NotSupportedError, StepError,
    ConditionError, QueryError, RecursionError, ValidationError,
)
MAX_ERROR_LENGTH = 500


def run_stage(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str, now: datetime,
              params: dict[str, Any] | None = None) -> None:
    """One transaction: ingest, one node's cohort step, or dispatch — at most once per tick.

    The `runs` row is written in the stage's own transaction, so a stage that already
    committed for this flow version and tick time is skipped: re-running a tick that was
    killed half-way (or retrying an Airflow task) does only the stages that did not finish,
    and ends exactly where an uninterrupted tick would. A node whose logic fails on this
    data fails only its own cohort (`StageFailed`); a failing goal is skipped for the tick.
    """
    flow_params = {**flow.params, **(params or {})}
    if _idle(connection, flow, stage, now):
        return  # nothing waits at the node: no transaction, and a re-run is a no-op too
    try:
        _run_once(connection, flow, stage, now, flow_params, goal=True)
    except RUNTIME_FAILURES as error:
        message = _error_text(error)
        if stage == INGEST:
            raise
        if stage == DISPATCH:
            # DuckDB has no savepoints: the failed transaction is gone, so dispatch runs again
            # without the goal, and the goal's failure is recorded in the same transaction.
            _run_once(connection, flow, stage, now, flow_params, goal=False, goal_error=message)
            warnings.warn(StageFailed(f"{flow.id} v{flow.version}: goal failed, skipped this "
                                      f"tick: {message}"), stacklevel=2)
            return
        failed = _fail_cohort(connection, flow, stage, now, message)
        warnings.warn(StageFailed(f"{flow.id} v{flow.version}: node {stage} failed for "
                                  f"{failed} contact(s): {message}"), stacklevel=2)


def _run_once(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str, now: datetime,
              flow_params: dict[str, Any], goal: bool, goal_error: str | None = None) -> None:
    connection.execute("BEGIN")
    try:
        started = datetime.now()
        if _already_done(connection, flow, stage, now):
            connection.execute("COMMIT")
            return
        if stage == INGEST:
            ingest(connection, now)
        elif stage == DISPATCH:
            dispatch(connection, flow, now, flow_params, goal=goal)
        else:
            _node_step(connection, flow, stage, now, flow_params)
        if goal_error is not None:
            _record_run(connection, flow, "_goal", now, started, "failed", goal_error)
        _record_run(connection, flow, stage, now, started, "done")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _record_run(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str, now: datetime,
                started: datetime, status: str, error: str | None = None) -> None:
    connection.execute(
        "INSERT INTO runs (flow_id, tick_time, stage, started_at, finished_at, status, "
        "version, error) VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?)",
        [flow.id, now, stage, started, status, flow.version, error],
    )


def _error_text(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, ValidationError):  # a saved version edited by hand after deploy
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "params"
        text = f"params.{field}: {first['msg']}"
    if isinstance(error, RecursionError):
        text = "the expression is nested too deeply to evaluate"
    return text[:MAX_ERROR_LENGTH]


def _fail_cohort(connection: duckdb.DuckDBPyConnection, flow: Flow, node_id: str,
                 now: datetime, message: str) -> int:
    """In a new transaction: the node's due tokens leave as failed, with the reason logged.

    Every token of those enrollments is removed (an enrollment that failed on one path does not
    go on along another) and each gets a node_log row, so no contact vanishes without a reason.
    Returns the number of enrollments failed."""
    node = flow.node(node_id)
    every_token = nodes.get(node.type).every_tick
    reason = f"node {node_id} failed: {message}"
    with transaction(connection):
        started = datetime.now()
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE failing AS SELECT DISTINCT enrollment_id FROM tokens "
            "WHERE flow_id = ? AND version = ? AND node_id = ? AND (? OR wake_at <= ?)",
            [flow.id, flow.version, node_id, every_token, now],
        )
        connection.execute(
            "INSERT INTO node_log SELECT ?, flow_id, version, enrollment_id, contact_id, "
            "node_id, 'failed', NULL, ? FROM tokens "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM failing)",
            [now, reason],
        )
        connection.execute(
            "DELETE FROM tokens WHERE enrollment_id IN (SELECT enrollment_id FROM failing)")
        connection.execute(
            "UPDATE enrollments SET status = 'failed', exited_at = ?, exit_reason = ? "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM failing) AND status = 'active'",
            [now, reason[:MAX_ERROR_LENGTH]],
        )
        row = connection.execute("SELECT count(*) FROM failing").fetchone()
        _record_run(connection, flow, node_id, now, started, "failed", message)
    return int(row[0]) if row else 0


def _already_done(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str,
                  now: datetime) -> bool:
    row = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE flow_id = ? AND version = ? AND tick_time = ? "
        "AND stage = ? AND status = 'done')",
        [flow.id, flow.version, now, stage],
    ).fetchone()
    return bool(row and row[0])


def _node_step(connection: duckdb.DuckDBPyConnection, flow: Flow, node_id: str, now: datetime,
               flow_params: dict[str, Any]) -> None:
    node = flow.node(node_id)
    node_type = nodes.get(node.type)
    params = flowplan.node_params(flow, node_id)
    every_token = node_type.every_tick
    if node_type.category is Category.TRIGGER:
        enroll.candidates(connection, flow, node, params, now, flow_params)
        enroll.enroll(connection, flow, node, now)
        if not _anyone_due(connection, flow, node.id, now, every_token):
            return  # nobody entered
    # (any other node got here only because `_idle` found a token due)
    prepare(connection, flow, node.id, node_type, now, every_token=every_token)
    cohort = Cohort(connection, flow, node, node_type, params, now, flow_params)
    if node_type.category is Category.TRIGGER:
        cohort.pass_all()
    else:
        step_for(node_type)(cohort)
    apply(cohort)
    if ended_paths(connection):
        complete(connection, flow, now, "cohort")


def _idle(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str,
          now: datetime) -> bool:
    """A non-trigger node with no token to look at (most nodes at most ticks)."""
    if stage in (INGEST, DISPATCH):
        return False
    node = flow.node(stage)
    if nodes.get(node.type).category is Category.TRIGGER:
        return False
    return not _anyone_due(connection, flow, stage, now, nodes.get(node.type).every_tick)


def _anyone_due(connection: duckdb.DuckDBPyConnection, flow: Flow, node_id: str,
                now: datetime, every_token: bool) -> bool:
    """Whether any token waits at the node (and is due, unless the step sees every token)."""
    row = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE flow_id = ? AND version = ? AND node_id = ? "
        "AND (? OR wake_at <= ?))",
        [flow.id, flow.version, node_id, every_token, now],
    ).fetchone()
    return bool(row and row[0])


__all__ = ["DISPATCH", "INGEST", "MAX_ERROR_LENGTH", "RUNTIME_FAILURES", "StageFailed",
           "run_stage"]
