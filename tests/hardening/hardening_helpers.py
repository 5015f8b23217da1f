"""Shared bits of the hardening tests: a small workspace, one-node flows, store reads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
from typer.testing import CliRunner

from mawb.cli import app
from mawb.engine import Workspace
from mawb.model import Flow
from mawb.validate import Report, validate_flow

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 11, 2, 9, 0)
runner = CliRunner()


def contacts(n: int = 3, **columns: Any) -> pd.DataFrame:
    """`n` consenting contacts c0..c(n-1) with an email each, plus `columns`."""
    rows = [{"contact_id": f"c{i}", "email": f"c{i}@example.com", "email_consent": True,
             **columns} for i in range(n)]
    return pd.DataFrame(rows)


def workspace(tmp_path: Path, frame: pd.DataFrame | None = None) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.import_contacts(contacts() if frame is None else frame)
    return ws


def one_step(node_type: str, **params: Any) -> Flow:
    """trigger (@once, everyone) -> the node under test -> an email (to see who went on)."""
    return (Flow.new("probe").add("start", "time_based_trigger", schedule="@once")
            .add("step", node_type, **params)
            .add("mail", "email_send", subject="Hi", body="Hello")
            .connect("start", "step").connect("step", "mail"))


def unchecked(flow: Flow, node_id: str, **params: Any) -> Flow:
    """The flow with raw params on one node, as a hand-edited file would carry them (the
    engine must not trust that validation ran)."""
    copy = flow.model_copy(deep=True)
    copy.node(node_id).params.update(params)
    return copy


def errors(report: Report) -> list[tuple[str | None, str | None, str]]:
    return [(d.node_id, d.field, d.message) for d in report.errors]


def validate(flow: Flow, columns: set[str] | None = None) -> Report:
    return validate_flow(flow, columns=columns)


def rows(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with ws.connection(0, read_only=True) as connection:
        return connection.execute(sql, params or []).fetchall()


def store_rows(path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute("SELECT * FROM contacts ORDER BY contact_id").fetchall()


def cli(*args: object) -> Any:
    return runner.invoke(app, [str(arg) for arg in args])
