"""`mawb deliver`: the dispatcher as one command (the compiled DAG's last task)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from delivery_helpers import (
    SMTP_PASSWORD,
    SmtpServer,
    leads,
    self_signed,
    smtp_settings,
    workspace_with,
)
from typer.testing import CliRunner

import mawb
from mawb.cli import app

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

T0 = datetime(2026, 11, 2, 9, 0)


def test_deliver_sends_the_queue_once_and_reports_counts(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAIL_PASSWORD", SMTP_PASSWORD)
    (tmp_path / "tls").mkdir()
    cert, key = self_signed(tmp_path / "tls")
    server = SmtpServer(cert, key).start()
    try:
        home = tmp_path / "ws"
        workspace = workspace_with(home, leads(3), {"mail": smtp_settings(server, cert)})
        flow = mawb.load_template("lead_welcome_v1")
        flow.settings.connections = {"email": "mail"}
        workspace.deploy(flow)
        workspace.tick(flow, T0)
        assert server.mailbox.messages == []

        runner = CliRunner()
        first = runner.invoke(app, ["deliver", "--home", str(home), "--json"])
        assert first.exit_code == 0, first.output
        assert json.loads(first.stdout)["sent"] == 3
        assert len(server.mailbox.messages) == 3
        again = runner.invoke(app, ["deliver", "--home", str(home)])
        assert again.exit_code == 0 and "delivered 0 of 0" in again.stdout
        assert len(server.mailbox.messages) == 3
    finally:
        server.stop()
