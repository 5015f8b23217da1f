"""Finished outbox rows leave the hot table, so a tick's and a dispatch batch's cost follows the
work due now, not the history: they move to `outbox_done` in the transaction that finished
them, `outbox_all` still shows every row, and a moved key is never enqueued again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from delivery_helpers import (
    SMTP_PASSWORD,
    SmtpServer,
    leads,
    self_signed,
    smtp_settings,
    workspace_with,
)

import mawb
from mawb.engine.deliver import deliver
from mawb.engine.runner import status
from mawb.engine.store import migrate
from mawb.engine.workspace import Workspace
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 3, 2, 9, 0)
OPEN = {"pending", "queued", "sending"}


@pytest.fixture
def smtp(tmp_path_factory: pytest.TempPathFactory,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SmtpServer, Path]]:
    monkeypatch.setenv("MAIL_PASSWORD", SMTP_PASSWORD)
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server = SmtpServer(cert, key).start()
    yield server, cert
    server.stop()


def _statuses(workspace: Workspace, table: str) -> dict[str, str]:
    """idempotency key -> status, over every partition."""
    found: dict[str, str] = {}
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            found.update(connection.execute(
                f"SELECT idempotency_key, status FROM {table}").fetchall())
    return found


def test_the_tick_and_the_dispatcher_leave_only_open_rows_in_the_hot_table(
        tmp_path: Path, smtp: tuple[SmtpServer, Path]) -> None:
    server, cert = smtp
    contacts = leads(3, unsubscribed=[False, False, True])
    workspace = workspace_with(tmp_path, contacts, {"mail": smtp_settings(server, cert)})
    flow = mawb.load_template("lead_welcome_v1")
    flow.settings.connections = {"email": "mail"}
    workspace.deploy(flow)

    workspace.tick(flow, T0)
    assert set(_statuses(workspace, "outbox").values()) == {"queued"}  # 2 wait for delivery
    assert list(_statuses(workspace, "outbox_done").values()) == ["suppressed"]
    assert len(_statuses(workspace, "outbox_all")) == 3

    report = deliver(workspace, now=T0)
    assert (report.claimed, report.sent) == (2, 2)
    assert _statuses(workspace, "outbox") == {}
    done = _statuses(workspace, "outbox_done")
    assert sorted(done.values()) == ["sent", "sent", "suppressed"]
    assert status(workspace, flow)["outbox"] == {"sent": 2, "suppressed": 1}
    assert len(server.mailbox.messages) == 2
    assert deliver(workspace, now=T0 + timedelta(minutes=10)).claimed == 0


def test_a_key_whose_row_moved_is_never_enqueued_again(tmp_path: Path) -> None:
    """The welcome mail was sent and archived; a token put back at the welcome node (same
    enrollment, same iteration: the same idempotency key) must not send it a second time."""
    workspace = Workspace(tmp_path)
    workspace.import_contacts(leads(2))
    flow = mawb.load_template("lead_welcome_v1")
    workspace.deploy(flow)
    workspace.tick(flow, T0)
    key = "lead_welcome_v1:1:c00000:welcome:1:0"
    assert _statuses(workspace, "outbox_done")[key] == "sent"
    with workspace.connection() as connection:
        connection.execute(
            "INSERT INTO tokens SELECT nextval('token_seq'), enrollment_id, contact_id, flow_id, "
            "version, 'welcome', 'start', ?, ?, NULL, 0, 'waiting' FROM enrollments "
            "WHERE contact_id = 'c00000'", [T0, T0])
    workspace.tick(flow, T0 + timedelta(hours=1))
    with workspace.connection(read_only=True) as connection:
        assert connection.execute(
            "SELECT count(*) FROM outbox_all WHERE idempotency_key = ?", [key]).fetchone() == (1,)
        assert connection.execute(
            "SELECT count(*) FROM messages WHERE idempotency_key = ?", [key]).fetchone() == (1,)
        assert connection.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def test_a_partitioned_dashboard_sees_every_row(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, partitions=2)
    workspace.import_contacts(leads(6, unsubscribed=[False] * 5 + [True]))
    flow = mawb.load_template("lead_welcome_v1")
    workspace.deploy(flow)
    workspace.tick(flow, T0)
    assert _statuses(workspace, "outbox") == {}
    with WorkspaceReader(tmp_path).read() as connection:
        assert connection.execute(
            "SELECT status, count(*) FROM outbox_all GROUP BY 1 ORDER BY 1").fetchall() == [
            ("sent", 5), ("suppressed", 1)]


ROWS: list[tuple[Any, ...]] = [
    ("k-sent", "sent"), ("k-dead", "dead"), ("k-skip", "skipped"), ("k-supp", "suppressed"),
    ("k-pending", "pending"), ("k-queued", "queued"), ("k-sending", "sending")]


@pytest.mark.parametrize("version", [1, 4])
def test_the_migration_moves_finished_rows_of_an_old_store(tmp_path: Path, version: int) -> None:
    connection = duckdb.connect(str(tmp_path / "store.duckdb"))
    try:
        migrate(connection, target=version)
        connection.executemany(
            "INSERT INTO outbox (idempotency_key, flow_id, contact_id, status, body, created_at) "
            "VALUES (?, 'f', 'c1', ?, 'hello', ?)", [[key, state, T0] for key, state in ROWS])
        migrate(connection)
        hot = dict(connection.execute("SELECT idempotency_key, status FROM outbox").fetchall())
        done = dict(connection.execute(
            "SELECT idempotency_key, status FROM outbox_done").fetchall())
        every = connection.execute(
            "SELECT idempotency_key, status, body, created_at FROM outbox_all ORDER BY 1"
        ).fetchall()
    finally:
        connection.close()
    assert set(hot.values()) == OPEN
    assert set(done.values()) == {"sent", "dead", "skipped", "suppressed"}
    assert every == sorted((key, state, "hello", T0) for key, state in ROWS)
