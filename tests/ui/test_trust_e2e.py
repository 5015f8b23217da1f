"""End to end in Debian chromium: work is never lost, and the numbers on the pages add up.

Two page sessions keep this bounded on a small machine:

- the Builder on a workspace with contacts: an edit autosaves a draft (the marker says so at
  once), the draft survives a reload and a restart of the server, Ctrl+Z undoes, and opening
  another flow asks before it discards;
- the Monitor and Experiments on the seeded workspace: KPI tiles, canvas badges, edge labels
  and the message-steps table agree with SQL counts over the store, and two kept runs are
  compared under labels that tell them apart.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.browser import serve_streamlit
from test_builder_e2e import Workbench, seed_contacts, wait_for_count
from test_pages_e2e import Tab
from ui_workspace import FLOW_ID, copy_of_demo

from mawb.ui.drafts import DraftStore
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 60_000


def open_builder(ui: Workbench, url: str) -> None:
    ui.page.goto(url)
    nav = ui.page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Builder").wait_for(timeout=WAIT_MS)
    nav.get_by_role("link", name="Builder").click()
    ui.page.locator(".mawb-palette-item").first.wait_for(timeout=WAIT_MS)
    ui.settle()


def test_drafts_survive_reload_and_restart_undo_and_the_discard_prompt(
        browser: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_contacts(home)
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    ui = Workbench(context.new_page())
    page = ui.page
    try:
        with serve_streamlit(REPO / "app.py", cwd=REPO, home=home,
                             log_path=tmp_path / "first.log") as url:
            open_builder(ui, url)
            ui.drop("manual_trigger", 120, 100)
            ui.drop("email_send", 360, 240)
            page.get_by_text("unsaved changes").wait_for(timeout=WAIT_MS)
            draft = DraftStore(home).load("new_flow")
            assert draft is not None and len(draft.flow.nodes) == 2
            # Undo (Ctrl+Z) takes the last drop back, and the draft file follows.
            page.locator("h2").filter(has_text="Builder").first.click()
            page.keyboard.press("Control+z")
            wait_for_count(page.locator(".react-flow__node"), 1)
            assert page.locator(".react-flow__node").count() == 1
            ui.settle()
            page.keyboard.press("Control+Shift+z")
            wait_for_count(page.locator(".react-flow__node"), 2)
            ui.settle()
            # Loading the app again is a new session (as a reload is; a reload of the /Builder
            # deep link only adds Streamlit's harmless 404 probes): the draft comes back.
            open_builder(ui, url)
            page.get_by_text("Restored your draft").wait_for(timeout=WAIT_MS)
            wait_for_count(page.locator(".react-flow__node"), 2)
            assert page.locator(".react-flow__node").count() == 2
            assert ui.errors == [], f"browser console errors: {ui.errors}"
            page.close()  # a page left open on a stopped server only logs refused requests
        # The server stopped; a new one on the same workspace restores the draft too.
        ui = Workbench(context.new_page())
        page = ui.page
        with serve_streamlit(REPO / "app.py", cwd=REPO, home=home,
                             log_path=tmp_path / "second.log") as url:
            open_builder(ui, url)
            page.get_by_text("Restored your draft").wait_for(timeout=WAIT_MS)
            wait_for_count(page.locator(".react-flow__node"), 2)
            assert page.locator(".react-flow__node").count() == 2
            page.get_by_text("unsaved changes").wait_for(timeout=WAIT_MS)
            # Opening another flow asks first; discarding empties the canvas and the draft.
            page.get_by_test_id("stSelectbox").filter(has_text="Open a flow").click()
            page.get_by_role("option", name="New empty flow").click()
            page.get_by_text("has unsaved changes").wait_for(timeout=WAIT_MS)
            ui.settle()  # the prompt above it moves the canvas, which mounts again
            wait_for_count(page.locator(".react-flow__node"), 2)
            assert page.locator(".react-flow__node").count() == 2  # nothing replaced yet
            kept = DraftStore(home).load("new_flow")
            assert kept is not None and len(kept.flow.nodes) == 2
            page.get_by_role("button", name="Discard changes").click()
            wait_for_count(page.locator(".react-flow__node"), 0)
            assert page.locator(".react-flow__node").count() == 0
            assert DraftStore(home).load("new_flow") is None
            page.close()  # before the server stops
    finally:
        context.close()
    for log in ("first.log", "second.log"):
        assert "Traceback" not in (tmp_path / log).read_text(errors="replace")
    assert ui.errors == [], f"browser console errors: {ui.errors}"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("trust_e2e")
    home = copy_of_demo(tmp_path_factory.getbasetemp(), folder / "home")
    with serve_streamlit(REPO / "app.py", cwd=REPO, home=home,
                         log_path=folder / "streamlit.log") as url:
        yield url, home
    assert "Traceback" not in (folder / "streamlit.log").read_text(errors="replace")


def count(home: Path, sql: str, *args: object) -> int:
    with WorkspaceReader(home).read() as connection:
        row = connection.execute(sql, list(args)).fetchone()
    assert row is not None
    return int(row[0])


def number(text: str) -> int:
    return int(text.strip().replace(",", ""))


def test_monitor_numbers_add_up_and_compare_labels_tell_runs_apart(
        browser: Any, seeded: tuple[str, Path]) -> None:
    url, home = seeded
    context = browser.new_context(viewport={"width": 1440, "height": 1400})
    tab = Tab(context.new_page(), url)
    page = tab.page
    try:
        tab.open("Monitor")
        page.locator(".react-flow__node").first.wait_for(timeout=WAIT_MS)
        page.locator(".react-flow__edge-text").first.wait_for(timeout=WAIT_MS)
        tab.settle()
        enrolled = count(home, "SELECT count(*) FROM enrollments WHERE flow_id = ?", FLOW_ID)
        sent = count(home, "SELECT count(*) FROM messages WHERE flow_id = ?", FLOW_ID)
        assert number(tab.metric("Enrolled")) == enrolled > 0
        assert number(tab.metric("Messages sent")) == sent
        assert tab.metric("Open rate").endswith("%")
        # Canvas badges: tokens in per step, as the store's node_log has them.
        badges = {}
        for node in page.locator(".react-flow__node").all():
            node_id = node.get_attribute("data-id")
            text = node.locator(".mawb-count-entered b").inner_text()
            badges[node_id] = number(text)
        for node_id, entered in badges.items():
            assert entered == count(home, "SELECT count(*) FROM node_log WHERE flow_id = ? "
                                    "AND node_id = ? AND event = 'entered'", FLOW_ID, node_id)
        # Edge labels: the edges into a step add up to its badge.
        labels = page.locator(".react-flow__edge").evaluate_all(
            "els => els.map(el => [el.dataset.id || el.getAttribute('data-testid'), "
            "(el.querySelector('.react-flow__edge-text') || {}).textContent || ''])")
        into: dict[str, int] = {}
        for edge_id, text in labels:
            target = str(edge_id).split("__")[-1]
            into[target] = into.get(target, 0) + (number(text) if text else 0)
        for target, tokens in into.items():
            assert tokens == badges[target], target
        # The message-steps table adds up to the entries of each step.
        table = page.get_by_test_id("stDataFrame").filter(has_text="why not sent").first
        table.scroll_into_view_if_needed()
        assert table.is_visible()
        assert count(home, "SELECT count(*) FROM outbox_all WHERE flow_id = ?", FLOW_ID) == sum(
            badges[n] for n in ("welcome", "guide", "webinar") if n in badges)
        # Experiments: two kept runs, labelled by what made them differ, compared.
        tab.open("Experiments")
        page.get_by_role("button", name="Run simulation").wait_for(timeout=WAIT_MS)
        tab.settle()
        page.get_by_text("Synthetic", exact=True).click()
        tab.settle()
        size = page.get_by_role("spinbutton", name="Contacts")
        size.fill("40")
        size.press("Enter")
        tab.settle()
        days = page.get_by_label("Days of virtual time")
        days.fill("1")
        days.press("Enter")
        tab.settle()
        for number_kept, seed in ((1, "0"), (2, "7")):
            field = page.get_by_role("spinbutton", name="Seed")
            field.fill(seed)
            field.press("Enter")
            tab.settle()
            assert field.input_value() == seed
            page.get_by_role("button", name="Run simulation").click()
            tab.settle()
            page.get_by_text(f"seed {seed} ·").first.wait_for(timeout=WAIT_MS * 2)
            # Without settling: the result's rerun must not show a second Keep button.
            page.get_by_role("button", name="Keep for comparison").click()
            page.get_by_text(f"Kept as variant #{number_kept}").wait_for(timeout=WAIT_MS)
            tab.settle()
        page.get_by_role("tab", name="Compare").click()
        tab.settle()
        first = page.get_by_text("#1 lead_welcome_v1 v1 · 40 synthetic · 1 d · seed 0",
                                 exact=False).first
        second = page.get_by_text("#2 lead_welcome_v1 v1 · 40 synthetic · 1 d · seed 7",
                                  exact=False).first
        first.wait_for(timeout=WAIT_MS)
        second.wait_for(timeout=WAIT_MS)
        deadline = time.monotonic() + 30
        while page.locator(".js-plotly-plot >> visible=true").count() < 1:
            assert time.monotonic() < deadline
            page.wait_for_timeout(200)
    finally:
        context.close()
    assert tab.errors == [], f"browser console errors: {tab.errors} {tab.failed}"
