"""Shared bits of the CLI tests: the in-process runner, fixture files and store snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
from typer.testing import CliRunner

from mawb.cli import app
from mawb.model import Flow

HERE = Path(__file__).parent
TEN_CONTACTS = HERE / "ten_contacts.csv"
BROKEN = HERE.parent / "validate" / "broken"
runner = CliRunner()


def cli(*args: object) -> Any:
    """Run `mawb ARGS...` in-process and return Typer's result."""
    return runner.invoke(app, [str(arg) for arg in args])


def cli_json(*args: object) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error_lines(result: Any) -> list[str]:
    """stderr lines; expected failures print `error: ...` first and never a traceback."""
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()


def store_rows(path: Path) -> dict[str, list[str]]:
    """Every table of a store file except the wall-clock bookkeeping of `runs`, sorted."""
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = [row[0] for row in connection.execute("SHOW TABLES").fetchall()]
        return {
            table: sorted(map(repr, connection.execute(f'SELECT * FROM "{table}"').fetchall()))
            for table in tables
            if table != "runs"
        }


def count(path: Path, sql: str) -> int:
    with duckdb.connect(str(path), read_only=True) as connection:
        return int(connection.execute(sql).fetchone()[0])  # type: ignore[index]


def manual_flow(tmp_path: Path) -> Path:
    """A two-node flow entered by hand: manual list -> one email."""
    flow = (
        Flow.new("hand_picked", "Hand picked")
        .add("picked", "manual_trigger", list_name="vip")
        .add("hello", "email_send", subject="Hi {{ first_name }}", body="Hello!")
        .connect("picked", "hello")
    )
    return flow.save(tmp_path / "hand_picked.json")
