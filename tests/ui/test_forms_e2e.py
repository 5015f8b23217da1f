"""End to end in Debian chromium: the step form, preview, test send, go live, cancel.

One server on one workspace (contacts, events, an SMTP connection to a real aiosmtpd, one
saved flow), one browser page, as an analyst would go:

- Builder: Go live and Pause (the lifecycle is read back from the store);
- the trigger's event picked from the workspace's events in the typed form (the autosaved
  draft changes); the message previewed for a chosen contact and sent as a test (it arrives
  at aiosmtpd marked as a test, and no outbox row is written);
- Monitor: Resume and Stop (the store follows);
- Experiments: a long simulation shows its progress and is cancelled.
"""

from __future__ import annotations

import email
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from support.browser import serve_streamlit
from test_builder_e2e import Workbench
from test_pages_e2e import Tab

import mawb
from mawb.ui.drafts import DraftStore
from mawb.ui.reader import WorkspaceReader
from mawb.versions import VersionStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))
from channel_servers import SMTP_PASSWORD, SmtpServer, self_signed, smtp_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 60_000
FLOW_ID = "forms_welcome"


def seed(home: Path, server: SmtpServer, cert: Path) -> tuple[str, str, list[str]]:
    """Contacts and events, connections.yaml naming the test server, one saved flow."""
    from mawb.data import synthetic_contacts, synthetic_events
    from mawb.engine.workspace import Workspace

    contacts = synthetic_contacts(60, seed=4)
    workspace = Workspace(home)
    workspace.import_contacts(contacts)
    events = synthetic_events(contacts, seed=4)
    workspace.import_events(events)
    (home / "connections.yaml").write_text(
        yaml.safe_dump({"connections": {"mail": smtp_settings(server, cert)}}))
    names = sorted(set(events["name"]))
    flow = mawb.Flow(id=FLOW_ID, name="Forms welcome")
    flow.add("start", "event_trigger", event=names[0])
    flow.add("hello", "email_send", subject="Hi {{ first_name }}", body="Welcome aboard",
             connection="mail")
    flow.connect("start", "hello")
    VersionStore(home).save(flow, "first")
    first = contacts.sort_values("contact_id").iloc[0]
    return str(first["contact_id"]), str(first["first_name"]), names


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("forms")
    cert, key = self_signed(base)
    server = SmtpServer(cert, key).start()
    previous = os.environ.get("MAIL_PASSWORD")
    os.environ["MAIL_PASSWORD"] = SMTP_PASSWORD  # the server process resolves env:MAIL_PASSWORD
    try:
        home = base / "home"
        contact, first_name, events = seed(home, server, cert)
        with serve_streamlit(REPO / "app.py", cwd=REPO, home=home,
                             log_path=base / "streamlit.log") as url:
            yield {"url": url, "home": home, "server": server, "contact": contact,
                   "first_name": first_name, "events": events}
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("MAIL_PASSWORD", None)
        else:
            os.environ["MAIL_PASSWORD"] = previous
    log = (base / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in log, log


def lifecycle(home: Path) -> str:
    from mawb import analytics

    with WorkspaceReader(home).read() as connection:
        return str(analytics.service_health(connection, FLOW_ID)["state"])


def wait_until(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def outbox_rows(home: Path) -> int:
    from mawb.engine.outbox import ALL_ROWS_QUERY

    with WorkspaceReader(home).read() as connection:
        return connection.execute(f"SELECT count(*) FROM ({ALL_ROWS_QUERY})").fetchone()[0]


def test_form_preview_test_send_lifecycle_and_cancel(browser: Any,
                                                       workspace: dict[str, Any]) -> None:
    home, server = workspace["home"], workspace["server"]
    context = browser.new_context(viewport={"width": 1440, "height": 1200})
    tab = Tab(context.new_page(), workspace["url"])
    ui = Workbench(tab.page)
    page = tab.page
    try:
        tab.open("Builder")
        ui.node("hello").wait_for(timeout=WAIT_MS)
        ui.settle()
        # Go live and pause from the Builder; the store holds the lifecycle.
        page.get_by_role("tab", name="Versions").click()
        page.get_by_role("button", name="Go live").click()
        wait_until(lambda: lifecycle(home) == "live", "the flow to go live")
        ui.settle()
        page.get_by_role("button", name="Pause").click()
        wait_until(lambda: lifecycle(home) == "paused", "the flow to pause")
        ui.settle()
        # The trigger's event, picked from the workspace's events in the typed form.
        ui.select("start")
        new_event = workspace["events"][-1]
        picker = page.get_by_test_id("stSelectbox").filter(has_text="Event").first
        picker.click()
        page.get_by_role("option", name=new_event, exact=True).click()
        ui.settle()
        wait_until(lambda: (DraftStore(home).load(FLOW_ID) is not None and DraftStore(home)
                            .load(FLOW_ID).flow.node("start").params["event"] == new_event),
                   "the draft to take the picked event")
        # Preview the message for a chosen contact, then send it as a test.
        ui.select("hello")
        page.get_by_text("Preview for a contact").click()
        field = page.get_by_label("Contact id")
        field.fill(workspace["contact"])
        field.press("Enter")
        ui.settle()
        page.get_by_text(f"Hi {workspace['first_name']}").first.wait_for(timeout=WAIT_MS)
        before = len(server.mailbox.messages)
        address = page.get_by_role("textbox", name="Send a test to")
        address.fill("proof@agency.example")
        address.press("Enter")
        ui.settle()
        page.get_by_role("button", name="Send test").click()
        page.get_by_text("Test sent to proof@agency.example").wait_for(timeout=WAIT_MS)
        wait_until(lambda: len(server.mailbox.messages) > before, "the test mail")
        _, recipients, raw = server.mailbox.messages[before]
        mail = email.message_from_bytes(raw)
        assert recipients == ["proof@agency.example"]
        assert mail["Subject"] == f"[TEST] Hi {workspace['first_name']}"
        assert mail["X-Mawb-Test"] == "proof"
        assert outbox_rows(home) == 0
        # Resume and stop from the Monitor.
        tab.open("Monitor")
        page.get_by_role("button", name="Resume").click()
        wait_until(lambda: lifecycle(home) == "live", "the flow to resume")
        tab.settle()
        page.get_by_role("button", name="Stop").click()
        wait_until(lambda: lifecycle(home) == "stopped", "the flow to stop")
        tab.settle()
        # Experiments: a long run on the workspace's contacts shows progress and is cancelled.
        tab.open("Experiments")
        page.get_by_role("button", name="Run simulation").wait_for(timeout=WAIT_MS)
        tab.settle()
        page.get_by_text("Workspace contacts", exact=True).click()
        tab.settle()
        days = page.get_by_role("spinbutton", name="Days of virtual time")
        days.fill("120")
        days.press("Enter")
        tab.settle()
        page.get_by_role("button", name="Run simulation").click()
        page.get_by_test_id("stProgress").first.wait_for(timeout=WAIT_MS)
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("was cancelled at").wait_for(timeout=WAIT_MS * 2)
        assert page.get_by_role("button", name="Cancel").count() == 0
        assert tab.errors == [] and ui.errors == [], tab.errors + ui.errors
    finally:
        context.close()
