"""Issue item 2: no flow step re-subscribes anyone or rewrites engine-owned columns.

Consent, suppression and engagement columns are written only by consent events and explicit
imports. Validation names the node and field; the engine refuses again at run time for a saved
version edited by hand, failing that node's cohort (nobody is emailed because of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest
from hardening_helpers import (
    NOW,
    contacts,
    errors,
    one_step,
    rows,
    unchecked,
    validate,
    workspace,
)

from mawb.engine import run_stage
from mawb.engine.workspace import StageFailed
from mawb.protected import is_protected

if TYPE_CHECKING:
    from pathlib import Path

PROTECTED = ["unsubscribed", "do_not_contact", "email_consent", "sms_consent", "push_consent",
             "whatsapp_consent", "email_opens", "email_clicks", "converted", "converted_at",
             "last_open_at", "last_click_at", "attributes", "contact_id"]

WRITERS = {
    "data_update set": lambda name: ("data_update", {"set": {name: False}, "increment": {}},
                                     "params.set"),
    "data_update increment": lambda name: ("data_update", {"increment": {name: 1}},
                                           "params.increment"),
    "crm_update mirrored": lambda name: ("crm_update", {"fields": {name: True}},
                                         "params.fields"),
    "database_query column": lambda name: (
        "database_query", {"sql": f"SELECT contact_id, false AS {name} FROM contacts"},
        "params.sql"),
    "database_query columns list": lambda name: (
        "database_query", {"sql": "SELECT contact_id, 1 AS x FROM contacts", "columns": [name]},
        "params.columns"),
    "external_api store": lambda name: (
        "external_api", {"url": "https://api.example.com", "store": {name: "data.x"}},
        "params.store"),
}


# (contact_id is every query's key, not a column it writes)
@pytest.mark.parametrize(("writer", "name"), [
    (writer, name) for writer in WRITERS for name in PROTECTED
    if (writer, name) != ("database_query column", "contact_id")])
def test_validation_refuses_writing_a_protected_column(writer: str, name: str) -> None:
    node_type, params, field = WRITERS[writer](name)
    found = errors(validate(one_step(node_type, **params)))
    assert len(found) == 1 and found[0][:2] == ("step", field), found
    assert name in found[0][2]


@pytest.mark.parametrize("name", ["lead_status", "score", "last_purchase_value", "consented"])
def test_ordinary_attributes_stay_writable(name: str) -> None:
    assert not is_protected(name)
    assert validate(one_step("data_update", set={name: "x"}, increment={})).valid


def test_reading_protected_columns_is_fine() -> None:
    assert validate(one_step("delay_action", until_field="converted_at")).valid
    # (the one-step probe does not wire if's branches; only the condition matters here)
    found = errors(validate(one_step("if_condition", condition="unsubscribed = false")))
    assert all(field != "params.condition" for _, field, _ in found)


RESUBSCRIBE = [
    ("data_update", {"set": {"unsubscribed": False, "do_not_contact": False,
                             "email_consent": True}, "increment": {}}),
    ("crm_update", {"fields": {"unsubscribed": False, "email_consent": True},
                    "mirror_attributes": True}),
    ("database_query", {"sql": "SELECT contact_id, false AS unsubscribed, true AS "
                               "email_consent FROM contacts", "columns": []}),
    ("database_query", {"sql": "SELECT * FROM contacts", "columns": []}),
]


@pytest.mark.parametrize(("node_type", "params"), RESUBSCRIBE)
def test_a_hand_edited_flow_cannot_resubscribe_at_run_time(
    node_type: str, params: dict[str, object], tmp_path: Path
) -> None:
    frame = contacts(3, unsubscribed=True, email_consent=False)
    ws = workspace(tmp_path, frame)
    flow = unchecked(one_step(node_type), "step", **params)
    with ws.connection() as connection, pytest.warns(StageFailed, match="node step failed"):
        for stage in ("_ingest", "start", "step", "mail", "_dispatch"):
            run_stage(connection, flow, stage, NOW)
    assert rows(ws, "SELECT DISTINCT unsubscribed, email_consent FROM contacts") == [
        (True, False)]
    assert rows(ws, "SELECT count(*) FROM messages") == [(0,)]
    assert rows(ws, "SELECT count(*) FROM outbox_all") == [(0,)]
    reasons = rows(ws, "SELECT DISTINCT reason FROM node_log WHERE event = 'failed'")
    assert len(reasons) == 1 and "node step failed" in reasons[0][0]


def test_an_unsubscribe_event_still_unsubscribes(tmp_path: Path) -> None:
    """Consent events keep working: the engine's own EVENT_EFFECTS are not a flow step."""
    ws = workspace(tmp_path)
    ws.import_events(pd.DataFrame({"contact_id": ["c1"], "name": ["unsubscribe"],
                                   "ts": ["2026-11-01T00:00:00Z"]}))
    flow = one_step("data_update", set={"lead_status": "x"}, increment={})
    ws.deploy(flow)
    ws.tick(flow, NOW)
    assert rows(ws, "SELECT contact_id FROM contacts WHERE unsubscribed") == [("c1",)]
