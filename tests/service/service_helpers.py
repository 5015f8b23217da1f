"""Shared bits of the service tests: a workspace with a key and a webhook flow, spool reading."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mawb.channels.webhooks import new_secret
from mawb.service.keys import create_key
from mawb.templates import load_template

if TYPE_CHECKING:
    from pathlib import Path

HOOK_SECRET_ENV = "MAWB_TEST_HOOK_SECRET"


@dataclass
class Intake:
    """A workspace prepared for the intake service: an API key and a webhook-triggered flow."""

    home: Path
    key: str
    hook_secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def env(self) -> dict[str, str]:
        return {HOOK_SECRET_ENV: self.hook_secret}


def make_intake(home: Path, rate: float = 10_000) -> Intake:
    """`home` with one key and flow `webinar` v1, whose webhook node `registered` (path
    `registrations`, event `webinar_registration`) is signed with a secret from the env."""
    _, key = create_key(home, "tests", rate)
    deploy_webhook_flow(home, version=1)
    return Intake(home, key, new_secret())


def deploy_webhook_flow(home: Path, version: int, event: str = "webinar_registration") -> Path:
    document = load_template("webinar_reminders_v1").to_dict()
    document.update(id="webinar", version=version)
    for node in document["nodes"]:
        if node["type"] == "webhook_trigger":
            node["params"].update(secret=f"env:{HOOK_SECRET_ENV}", event=event)
    path = home / "flows" / "webinar" / f"v{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def spooled(home: Path) -> list[dict[str, Any]]:
    """Every record in `spool/*.jsonl` (in file order); a torn line fails json.loads."""
    records: list[dict[str, Any]] = []
    for path in sorted((home / "spool").glob("*.jsonl")):
        text = path.read_text()
        assert text.endswith("\n"), f"{path.name} does not end with a newline (torn)"
        records += [json.loads(line) for line in text.splitlines()]
    return records


def spooled_events(home: Path) -> dict[str, dict[str, Any]]:
    """Spooled events by event_id; asserts no id appears twice."""
    events: dict[str, dict[str, Any]] = {}
    for record in spooled(home):
        if record["kind"] == "event":
            assert record["event_id"] not in events, f"{record['event_id']} spooled twice"
            events[record["event_id"]] = record
    return events


def error_of(response: Any) -> tuple[int, str | None, str]:
    """(status, field, message) of a refused request's JSON body."""
    body = response.json()
    return response.status_code, body.get("field"), body["error"]
