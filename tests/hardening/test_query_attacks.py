"""Issue item 1: a `database_query` can read no file, setting or table outside the allow-list.

Each attack is refused twice: by validation (a diagnostic on the node's `params.sql`) and at
run time (a hand-edited saved version fails that node's cohort and copies nothing). Below
both, the sandbox itself refuses file access even for SQL that skipped the checker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pytest
from hardening_helpers import NOW, errors, one_step, rows, unchecked, validate, workspace

from mawb.engine import run_stage
from mawb.engine.workspace import StageFailed
from mawb.query import CheckedQuery, QueryError, check_query, run_query

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s3cr3t-value"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.csv"
    path.write_text(f"contact_id,leak\nc0,{SECRET}\n", encoding="utf-8")
    return path


def attacks(path: str) -> dict[str, str]:
    """The reproductions from the attack run, plus their near relatives."""
    return {
        "cte shadowing a file path": (
            f'SELECT c.contact_id, s.* EXCLUDE (contact_id) FROM contacts c, "{path}" s '
            f'WHERE c.contact_id IN (WITH "{path}" AS (SELECT 1 AS a) '
            "SELECT c2.contact_id FROM contacts c2)"),
        "cte with a plain name in another scope": (
            "SELECT c.contact_id, s.* FROM contacts c, secret s WHERE c.contact_id IN "
            "(WITH secret AS (SELECT 1 AS a) SELECT c2.contact_id FROM contacts c2)"),
        "cte shadowing an allowed table": (
            "WITH contacts AS (SELECT 'c0' AS contact_id, 1 AS x) SELECT contact_id, x "
            "FROM contacts"),
        "current_setting": (
            "SELECT contact_id, current_setting('temp_directory') AS leak FROM contacts"),
        "read_csv": f"SELECT contact_id, x.leak FROM contacts, read_csv('{path}') x",
        "read_csv_auto in a subquery": (
            f"SELECT contact_id, (SELECT max(leak) FROM read_csv_auto('{path}')) AS leak "
            "FROM contacts"),
        "glob": "SELECT contact_id, file AS leak FROM contacts, glob('/etc/*')",
        "file path as table": f"SELECT contact_id, leak FROM '{path}'",
        "quoted file path as table": f'SELECT contact_id, leak FROM "{path}"',
        "getenv": "SELECT contact_id, getenv('HOME') AS leak FROM contacts",
        "qualified table": "SELECT contact_id FROM information_schema.tables",
        "schema-qualified engine table": "SELECT contact_id FROM main.outbox",
        "engine table outside the allow-list": "SELECT contact_id, body FROM outbox",
        "table function": "SELECT contact_id, value AS leak FROM duckdb_settings(), contacts",
        "query()": "SELECT * FROM query('SELECT contact_id FROM contacts')",
        "attach": f"ATTACH '{path}.db' AS other",
        "copy": f"COPY contacts TO '{path}.out'",
        "two statements": "SELECT contact_id FROM contacts; DROP TABLE contacts",
        "set": "SET enable_external_access = true",
        "install": "INSTALL httpfs",
        "pragma": "PRAGMA database_list",
    }


ATTACK_NAMES = list(attacks("/x"))
# At run time the same checker runs again; one attack per way in is enough there.
RUNTIME_ATTACKS = ["cte shadowing a file path", "current_setting", "read_csv", "glob",
                   "file path as table", "engine table outside the allow-list", "attach"]


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_validation_refuses_the_attack_naming_node_and_field(name: str, secret: Path) -> None:
    sql = attacks(str(secret))[name]
    with pytest.raises(QueryError):
        check_query(sql)
    found = errors(validate(one_step("database_query", sql=sql)))
    assert [(node, field) for node, field, _ in found] == [("step", "params.sql")], found


@pytest.mark.parametrize("name", RUNTIME_ATTACKS)
def test_a_hand_edited_version_fails_the_node_and_copies_nothing(
    name: str, secret: Path, tmp_path: Path
) -> None:
    ws = workspace(tmp_path)
    flow = unchecked(one_step("database_query"), "step", sql=attacks(str(secret))[name])
    before = rows(ws, "SELECT * FROM contacts ORDER BY contact_id")
    with ws.connection() as connection, pytest.warns(StageFailed, match="node step failed"):
        for stage in ("_ingest", "start", "step", "mail", "_dispatch"):
            run_stage(connection, flow, stage, NOW)
    assert rows(ws, "SELECT * FROM contacts ORDER BY contact_id") == before
    assert SECRET not in repr(rows(ws, "SELECT * FROM node_log"))
    assert rows(ws, "SELECT DISTINCT status FROM enrollments") == [("failed",)]
    assert rows(ws, "SELECT count(*) FROM messages") == [(0,)]
    (status, error), = rows(ws, "SELECT status, error FROM runs WHERE stage = 'step'")
    assert status == "failed" and error


@pytest.mark.parametrize("sql", [
    "SELECT contact_id, leak FROM read_csv('{path}')",
    "SELECT contact_id, file AS leak FROM glob('{folder}/*')",
    "SELECT 'c0' AS contact_id, count(*) AS leak FROM outbox",
])
def test_the_sandbox_refuses_even_sql_that_skipped_the_checker(
    sql: str, secret: Path, tmp_path: Path
) -> None:
    """Defence in depth: a separate DuckDB with external access off and configuration locked,
    holding only copies of the allow-listed tables the (checked) query named."""
    ws = workspace(tmp_path)
    text = sql.format(path=secret, folder=secret.parent)
    forged = CheckedQuery(sql=text, tables=frozenset({"contacts"}), outputs=("contact_id",))
    with ws.connection() as connection, pytest.raises(duckdb.Error) as caught:
        run_query(connection, forged)
    assert SECRET not in str(caught.value)


def test_the_sandbox_cannot_be_unlocked(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    forged = CheckedQuery(sql="SET enable_external_access = true", tables=frozenset(),
                          outputs=("contact_id",))
    with ws.connection() as connection, pytest.raises(duckdb.InvalidInputException):
        run_query(connection, forged)


@pytest.mark.parametrize("sql", [
    "SELECT contact_id, count(*) AS page_views_7d FROM events WHERE name = 'page_view' "
    "GROUP BY contact_id",
    "WITH opens AS (SELECT contact_id, count(*) AS n FROM events GROUP BY 1) "
    "SELECT c.contact_id, coalesce(o.n, 0) AS opens_seen FROM contacts c "
    "LEFT JOIN opens o USING (contact_id)",
    "SELECT contact_id, rank() OVER (ORDER BY contact_id) AS position FROM contacts",
    "SELECT contact_id, (SELECT count(*) FROM messages m WHERE m.contact_id = c.contact_id) "
    "AS sent FROM contacts c",
])
def test_ordinary_enrichment_queries_still_run(sql: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    flow = one_step("database_query", sql=sql)
    assert validate(flow).valid, errors(validate(flow))
    ws.deploy(flow)
    ws.tick(flow, NOW)
    assert rows(ws, "SELECT DISTINCT status FROM enrollments") == [("active",)] or rows(
        ws, "SELECT DISTINCT status FROM enrollments") == [("completed",)]
    assert rows(ws, "SELECT count(*) FROM runs WHERE status = 'failed'") == [(0,)]
