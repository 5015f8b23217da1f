"""Test sends from the preview panel, against a real aiosmtpd server (STARTTLS + AUTH).

A proof goes to the typed address through the step's SMTP connection, marked as a test, and
leaves the store as it was: no outbox row, no count, no history; it is listed in the
workspace's test-sends log. Without a connection it is refused, saying why.
"""

from __future__ import annotations

import email
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

import mawb
from mawb.ui import proof_send

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))
from channel_servers import (
    SMTP_PASSWORD,
    SmtpServer,
    self_signed,
    smtp_settings,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


def welcome_flow(connection: str | None = "mail") -> mawb.Flow:
    flow = mawb.Flow(id="proofs")
    flow.add("start", "manual_trigger", list_name="vip")
    flow.add("hello", "email_send", subject="Hi {{ first_name }}",
             body="Welcome, {{ first_name }}!", connection=connection)
    flow.connect("start", "hello")
    return flow


def seed(home: Path) -> tuple[str, str]:
    from mawb.data import synthetic_contacts
    from mawb.engine.workspace import Workspace

    contacts = synthetic_contacts(5, seed=2)
    Workspace(home).import_contacts(contacts)
    first = contacts.sort_values("contact_id").iloc[0]
    return str(first["contact_id"]), str(first["first_name"])


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SmtpServer, Path]]:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server = SmtpServer(cert, key).start()
    yield server, cert
    server.stop()


def outbox_rows(home: Path) -> int:
    from mawb.engine.outbox import ALL_ROWS_QUERY
    from mawb.ui.reader import WorkspaceReader

    with WorkspaceReader(home).read() as connection:
        return connection.execute(f"SELECT count(*) FROM ({ALL_ROWS_QUERY})").fetchone()[0]


def test_a_test_send_arrives_marked_and_leaves_the_store_alone(
        smtp: tuple[SmtpServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert = smtp
    monkeypatch.setenv("MAIL_PASSWORD", SMTP_PASSWORD)
    contact, first_name = seed(tmp_path)
    (tmp_path / "connections.yaml").write_text(
        yaml.safe_dump({"connections": {"mail": smtp_settings(server, cert)}}))
    before = len(server.mailbox.messages)
    proof = proof_send.send_proof(welcome_flow(), "hello", contact, "me@agency.example",
                                  tmp_path)
    assert proof.ok, proof.detail
    sender, recipients, raw = server.mailbox.messages[before]
    assert recipients == ["me@agency.example"] and sender == "news@shop.example"
    message = email.message_from_bytes(raw)
    assert message["Subject"] == f"[TEST] Hi {first_name}"
    assert message[proof_send.TEST_HEADER] == "proof"
    assert message["List-Unsubscribe"] is None  # it would unsubscribe the sample contact
    assert f"Welcome, {first_name}!" in raw.decode(errors="replace")
    assert outbox_rows(tmp_path) == 0  # not a send: nothing queued, counted or recorded
    logged = proof_send.recent_proofs(tmp_path)
    assert logged[0]["to"] == "me@agency.example" and logged[0]["ok"] is True
    assert logged[0]["contact_id"] == contact


def test_a_test_send_is_refused_without_a_connection(tmp_path: Path) -> None:
    contact, _ = seed(tmp_path)
    with pytest.raises(proof_send.ProofError, match="no connection"):
        proof_send.send_proof(welcome_flow(None), "hello", contact, "me@agency.example",
                              tmp_path)
    with pytest.raises(proof_send.ProofError, match="not in the workspace's connections"):
        proof_send.send_proof(welcome_flow("mail"), "hello", contact, "me@agency.example",
                              tmp_path)
    with pytest.raises(proof_send.ProofError, match="not an email address"):
        proof_send.send_proof(welcome_flow("mail"), "hello", contact, "me", tmp_path)
    assert proof_send.recent_proofs(tmp_path) == []  # nothing was attempted
