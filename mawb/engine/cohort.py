"""The cohort at one node: the set-based unit of work every node step operates on.

A step never loops over contacts. It receives a `Cohort` — the tokens waiting at its node
whose wake time has come, materialised as the temp table `cohort` — and writes one row per
token into the temp table `decision`: a branch to leave by, or a time to wait until. `apply`
then moves every token at once: waiting tokens get their new wake time, leaving tokens are
replaced by tokens at the targets of their branch, and every transition lands in node_log.
All of it runs inside the caller's transaction, so a crash leaves the node untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from mawb.expr import to_sql
from mawb.flowplan import SINGLE, plan

if TYPE_CHECKING:
    from datetime import datetime

    import duckdb

    from mawb.model import Flow, Node
    from mawb.nodes.base import NodeType, Params



def quote(name: str) -> str:
    """A safely quoted DuckDB identifier (names are validated slugs, quoted anyway)."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def literal(value: Any) -> str:
    """A SQL literal built by sqlglot from a Python value (never string formatting)."""
    return exp.convert(value).sql("duckdb")


def contact_column(name: str) -> exp.Expression:
    return exp.column(name, table="c", quoted=True)


@dataclass
class Cohort:
    """Context handed to node steps: connection, flow, node and the virtual/real time."""

    connection: duckdb.DuckDBPyConnection
    flow: Flow
    node: Node
    node_type: type[NodeType]
    params: Params
    now: datetime
    flow_params: dict[str, Any]
    entry_condition: str = field(default="")
    all_leave: bool = field(default=False)  # only pass_all decided: every token leaves

    def condition(self, text: str) -> str:
        """DuckDB SQL for a flow condition over the contact alias `c` (params bound)."""
        return to_sql(text, self.flow_params, column=contact_column, now=self.now)

    def sql(self, statement: str, parameters: list[Any] | None = None) -> None:
        self.connection.execute(statement, parameters or [])

    def size(self) -> int:
        row = self.connection.execute("SELECT count(*) FROM cohort").fetchone()
        return int(row[0]) if row else 0

    def decide(self, select: str, parameters: list[Any] | None = None) -> None:
        """Fill `decision` from a SELECT returning (token_id, branch, wait_until, deadline,
        iteration); branch NULL means wait until wait_until."""
        self.sql(f"INSERT INTO decision {select}", parameters)
        self.all_leave = False

    def pass_all(self, branch: str = SINGLE) -> None:
        """Every token leaves by `branch` (the common case for actions)."""
        self.decide(
            "SELECT token_id, ?, NULL, NULL, NULL FROM cohort", [branch]
        )
        self.all_leave = branch == SINGLE


def routes(flow: Flow, node_id: str, node_type: type[NodeType]) -> list[tuple[str, str]]:
    """(branch, target) pairs of a node; single/fan-out edges share the branch SINGLE."""
    return list(plan(flow).routes.get(node_id, ()))


def prepare(connection: duckdb.DuckDBPyConnection, flow: Flow, node_id: str,
            node_type: type[NodeType], now: datetime, every_token: bool) -> None:
    """Materialise the cohort of a node, an empty decision table and the node's routes.

    One statement per table (CREATE OR REPLACE, routes from a VALUES list): a node step's
    fixed cost is counted in statements, whatever the cohort's size."""
    due = "" if every_token else "AND wake_at <= ?"
    parameters: list[Any] = [flow.id, flow.version, node_id] + ([] if every_token else [now])
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE cohort AS SELECT * FROM tokens "
        f"WHERE flow_id = ? AND version = ? AND node_id = ? {due}",
        parameters,
    )
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE decision (token_id BIGINT, branch VARCHAR, "
        "wait_until TIMESTAMP, deadline TIMESTAMP, iteration INTEGER)"
    )
    pairs = routes(flow, node_id, node_type)
    values = ", ".join(f"({literal(branch)}, {literal(target)})" for branch, target in pairs)
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE route AS SELECT * FROM "
        + (f"(VALUES {values}) r(branch, target)" if pairs else
           "(SELECT CAST(NULL AS VARCHAR) AS branch, CAST(NULL AS VARCHAR) AS target LIMIT 0)")
    )


def apply(cohort: Cohort) -> None:
    """Move the cohort according to `decision` (see module docstring).

    Where each branch leads to at most one node, a leaving token moves in place (an UPDATE
    keeping its id) and a token whose branch has no edge is deleted; where a branch fans out,
    the tokens are replaced by new ones under ids above the largest before them, in
    (token, target) order. When every token left by SINGLE (`pass_all`), the cohort itself is
    the decision: no join with `decision`, and no token waits."""
    connection, flow, now = cohort.connection, cohort.flow, cohort.now
    node_id = cohort.node.id
    back_targets = plan(flow).back_targets.get(node_id, frozenset())
    pairs = routes(flow, node_id, cohort.node_type)
    branches = [branch for branch, _ in pairs]
    fans_out = len(branches) != len(set(branches))
    if cohort.all_leave:
        leaving, branch, iteration = "cohort t", literal(SINGLE), "t.iteration"
        transitions = f"'completed', {branch}"
        logged = "cohort t"
    else:
        connection.execute(
            """
            UPDATE tokens SET wake_at = d.wait_until,
                   deadline = coalesce(d.deadline, tokens.deadline),
                   state = 'waiting'
            FROM decision d
            WHERE tokens.token_id = d.token_id AND d.branch IS NULL
            """
        )
        leaving = "decision d JOIN cohort t USING (token_id)"
        branch, iteration = "d.branch", "coalesce(d.iteration, t.iteration)"
        # Tokens starting to wait and tokens leaving.
        transitions = "CASE WHEN d.branch IS NULL THEN 'waiting' ELSE 'completed' END, d.branch"
        logged = f"{leaving} WHERE d.branch IS NOT NULL OR t.state IS NULL"
    # A back-edge is taken at the next tick: its token wakes a microsecond later, so the
    # loop node (already processed this tick) picks it up next time.
    back = list(back_targets) or [""]
    placeholders = ", ".join("?" for _ in back)
    wake = (f"CASE WHEN r.target IN ({placeholders}) "
            "THEN CAST(? AS TIMESTAMP) + INTERVAL 1 MICROSECOND ELSE CAST(? AS TIMESTAMP) END")
    wake_parameters = [*back, now, now]
    moves = f"{leaving} JOIN route r ON r.branch = {branch}"
    if fans_out:
        _replace(connection, cohort, moves, iteration, wake, wake_parameters, transitions,
                 logged)
        return
    _log(connection, now, transitions, logged,
         "SELECT ?, t.flow_id, t.version, t.enrollment_id, t.contact_id, r.target, "
         f"'entered', NULL, t.node_id FROM {moves}", [now])
    connection.execute(
        f"""
        UPDATE tokens SET node_id = m.target, via = m.node_id, arrived_at = CAST(? AS TIMESTAMP),
               wake_at = m.wake_at, deadline = NULL, iteration = m.iteration, state = NULL
        FROM (SELECT t.token_id, t.node_id, r.target, {iteration} AS iteration,
                     {wake} AS wake_at
              FROM {moves}) m
        WHERE tokens.token_id = m.token_id
        """,
        [now, *wake_parameters],
    )
    if cohort.all_leave:
        if SINGLE not in branches:  # an end of the path: every token leaves the flow here
            connection.execute("DELETE FROM tokens WHERE token_id IN "
                               "(SELECT token_id FROM cohort)")
    else:  # tokens that left by a branch with no edge
        connection.execute(
            "DELETE FROM tokens WHERE token_id IN (SELECT token_id FROM decision "
            "WHERE branch IS NOT NULL AND branch NOT IN (SELECT branch FROM route))")


def _replace(connection: duckdb.DuckDBPyConnection, cohort: Cohort, moves: str,
             iteration: str, wake: str, wake_parameters: list[Any], transitions: str,
             logged: str) -> None:
    """A fan-out: the leaving tokens are replaced by one new token per target, whose
    `entered` rows are read back by id in the statement that logs the cohort's own."""
    now = cohort.now
    row = connection.execute("SELECT coalesce(max(token_id), 0) FROM tokens").fetchone()
    base = int(row[0]) if row else 0
    connection.execute(
        f"""
        INSERT INTO tokens
        SELECT ? + row_number() OVER (ORDER BY t.token_id, r.target),
               t.enrollment_id, t.contact_id, t.flow_id, t.version, r.target, t.node_id,
               CAST(? AS TIMESTAMP), {wake}, NULL, {iteration}, NULL
        FROM {moves}
        """,
        [base, now, *wake_parameters],
    )
    _log(connection, now, transitions, logged,
         "SELECT arrived_at, flow_id, version, enrollment_id, contact_id, node_id, 'entered', "
         "NULL, via FROM tokens WHERE token_id > ?", [base])
    left = ("SELECT token_id FROM cohort" if cohort.all_leave else
            "SELECT token_id FROM decision WHERE branch IS NOT NULL")
    connection.execute(f"DELETE FROM tokens WHERE token_id IN ({left})")


def _log(connection: duckdb.DuckDBPyConnection, now: datetime, transitions: str, logged: str,
         entered: str, parameters: list[Any]) -> None:
    """One node_log statement: the cohort's own transitions and the `entered` rows of the
    tokens arriving at the targets (`entered`, a SELECT with its `parameters`)."""
    connection.execute(
        f"""
        INSERT INTO node_log
        SELECT ?, t.flow_id, t.version, t.enrollment_id, t.contact_id, t.node_id,
               {transitions}, NULL
        FROM {logged}
        UNION ALL
        {entered}
        """,
        [now, *parameters],
    )


def ended_paths(connection: duckdb.DuckDBPyConnection) -> bool:
    """Whether some token left by a branch with no edge (so its enrollment may be done)."""
    row = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM decision WHERE branch IS NOT NULL "
        "AND branch NOT IN (SELECT branch FROM route))"
    ).fetchone()
    return bool(row and row[0])
