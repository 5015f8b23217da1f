"""Shared parts of the delivery tests: real loopback servers, workspaces with connections.

The SMTP (aiosmtpd, STARTTLS + AUTH) and HTTP servers are the provider tests' own
(`tests/channels/channel_servers.py`), so the engine is tested against the same receivers.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))

from channel_servers import (
    SMTP_PASSWORD,
    Answer,
    HttpServer,
    Received,
    SmtpServer,
    self_signed,
    smtp_settings,
)

from mawb.engine.workspace import Workspace

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"delivery-tests-signing-key-32byt").decode()
__all__ = ["SMTP_PASSWORD", "WEBHOOK_SECRET", "Answer", "HttpServer", "Received", "SmtpServer",
           "leads", "self_signed", "smtp_settings", "workspace_with"]


def leads(count: int, **columns: Any) -> pd.DataFrame:
    """`count` lead contacts with consent; `columns` override (a list = one value per row)."""
    rows = [{"contact_id": f"c{i:05d}", "email": f"lead{i}@example.com",
             "phone": f"+1555{i:07d}", "first_name": f"Lead{i}", "last_name": "Doe",
             "company": "Acme", "industry": "retail", "lifecycle": "lead",
             "engagement_score": 0.9, "score": 45.0, "email_consent": True,
             "sms_consent": True} for i in range(count)]
    frame = pd.DataFrame(rows)
    for name, value in columns.items():
        frame[name] = value
    return frame


def workspace_with(home: Path, contacts: pd.DataFrame,
                   connections: dict[str, dict[str, Any]]) -> Workspace:
    """A workspace at `home` holding `contacts`, its connections.yaml and a webhook key file."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "hook.key").write_text(WEBHOOK_SECRET)
    (home / "connections.yaml").write_text(yaml.safe_dump({"connections": connections}))
    workspace = Workspace(home)
    workspace.import_contacts(contacts)
    return workspace


def webhook_connection(**extra: Any) -> dict[str, Any]:
    return {"kind": "webhook", "allow_hosts": ["127.0.0.1"], "signing_secret": "file:hook.key",
            "timeout_seconds": 5, **extra}


def outbox(workspace: Workspace, flow_id: str) -> pd.DataFrame:
    with workspace.connection(read_only=True) as connection:
        return connection.execute(
            "SELECT idempotency_key, node_id, channel, recipient, status, reason, error, "
            "attempts, not_before, provider_ref, audience FROM outbox_all WHERE flow_id = ? "
            "ORDER BY idempotency_key", [flow_id]).fetchdf()
