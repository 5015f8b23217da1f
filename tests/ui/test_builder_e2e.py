"""End to end: the workbench (`streamlit run app.py`) in Debian chromium against a temp workspace.

One story, as an analyst would do it: open the home page, go to the Builder, drag a trigger,
an if/else and two messages from the palette, connect the trigger and the if-node's `true` and
`false` handles (an unconnected message shows a validation error on the canvas, which goes away
once connected), edit a step in the config panel, save two versions and read the diff. The
browser console stays clean throughout. Screenshots land in artifacts/screenshots/ and the
final home and builder pictures are copied to docs/screenshots/ for the README when
MAWB_PUBLISH_SCREENSHOTS is set (so a test run never changes tracked files).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.browser import serve_streamlit

from mawb.versions import VersionStore

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
SETTLE_MS = 30_000


def seed_contacts(home: Path) -> None:
    """A small population, so the home page has something to count."""
    from mawb.data import synthetic_contacts, synthetic_events
    from mawb.engine.workspace import Workspace

    contacts = synthetic_contacts(500, seed=1)
    workspace = Workspace(home)
    workspace.import_contacts(contacts)
    workspace.import_events(synthetic_events(contacts, seed=1))


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`streamlit run app.py` on a free loopback port with MAWB_HOME in a temp folder."""
    home = tmp_path_factory.mktemp("mawb_home")
    seed_contacts(home)
    log_path = home.parent / "streamlit.log"
    with serve_streamlit(REPO / "app.py", cwd=REPO, home=home, log_path=log_path) as url:
        yield url, home
    log_text = log_path.read_text(errors="replace")
    assert "Traceback" not in log_text, log_text


def wait_for_count(locator: Any, count: int) -> None:
    """Poll until ``locator`` matches ``count`` elements (CSS locators pierce the canvas's
    shadow DOM, which `wait_for_function` selectors do not)."""
    deadline = time.monotonic() + SETTLE_MS / 1000
    while locator.count() != count and time.monotonic() < deadline:
        locator.page.wait_for_timeout(100)


class Workbench:
    """A browser page on the workbench, collecting console errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def settle(self) -> None:
        """Wait until a rerun the last gesture started (after the canvas debounce) is done."""
        self.page.wait_for_timeout(700)
        self.page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
            timeout=SETTLE_MS,
        )
        self.page.wait_for_timeout(300)

    def node(self, node_id: str) -> Any:
        return self.page.locator(f'.react-flow__node[data-id="{node_id}"]')

    def drop(self, node_type: str, x: int, y: int) -> None:
        before = self.page.locator(".react-flow__node").count()
        self.page.locator(f'[data-palette-type="{node_type}"] >> visible=true').drag_to(
            self.page.locator(".react-flow__pane"), target_position={"x": x, "y": y}
        )
        nodes = self.page.locator(".react-flow__node")
        wait_for_count(nodes, before + 1)
        assert nodes.count() == before + 1, f"dropping {node_type} made no node"
        self.settle()

    def connect(self, source: str, target: str, branch: str | None = None) -> None:
        handle = (f'.react-flow__handle.source[data-handleid="{branch}"]' if branch
                  else ".react-flow__handle.source")
        self.node(source).locator(handle).drag_to(
            self.node(target).locator(".react-flow__handle.target")
        )
        self.settle()

    def select(self, node_id: str) -> None:
        self.node(node_id).locator(".mawb-node-title").click()
        self.settle()

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def save_version(self, message: str) -> None:
        self.page.get_by_role("tab", name="Versions").click()
        field = self.page.get_by_label("What changed?")
        field.fill(message)
        self.page.get_by_role("button", name="Save version").click()
        self.settle()


@pytest.fixture
def workbench_page(browser: Any, workbench: tuple[str, Path]) -> Iterator[Workbench]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    wrapped = Workbench(context.new_page())
    wrapped.page.goto(workbench[0])
    wrapped.page.get_by_text("Marketing Automation Workbench").wait_for(timeout=60_000)
    wrapped.settle()
    yield wrapped
    wrapped.shot("last_state")  # what the page showed when the test ended (or failed)
    context.close()
    assert wrapped.errors == [], f"browser console errors: {wrapped.errors}"


def test_build_validate_configure_save_and_diff(
    workbench_page: Workbench, workbench: tuple[str, Path]
) -> None:
    ui, page = workbench_page, workbench_page.page
    ui.shot("home_empty")
    page.get_by_role("link", name="Builder").first.click()
    page.locator(".mawb-palette-item").first.wait_for(timeout=60_000)
    ui.settle()
    assert page.locator(".mawb-palette-item").count() == 23

    ui.drop("manual_trigger", 120, 60)
    ui.drop("if_condition", 120, 260)
    ui.drop("email_send", 360, 150)
    ui.drop("sms_send", 360, 380)
    ids = page.locator(".react-flow__node").evaluate_all("els => els.map(el => el.dataset.id)")
    assert ids == ["manual_trigger_1", "if_condition_1", "email_send_1", "sms_send_1"]

    ui.connect("manual_trigger_1", "if_condition_1")
    ui.connect("if_condition_1", "email_send_1", "true")
    # The SMS is not connected yet: Python's validation outlines it in red with the reason.
    error = ui.node("sms_send_1").locator(".mawb-node-error")
    error.wait_for(timeout=SETTLE_MS)
    assert "no trigger leads here" in error.inner_text()
    assert "has-error" in (ui.node("sms_send_1").locator(".mawb-node").get_attribute("class")
                           or "")
    assert page.get_by_text("no trigger leads here; connect it or delete it").count() >= 1
    ui.shot("builder_error")

    ui.connect("if_condition_1", "sms_send_1", "false")
    error.wait_for(state="detached", timeout=SETTLE_MS)
    page.get_by_text("No problems found").wait_for(timeout=SETTLE_MS)
    edges = page.locator(".react-flow__edge").count()
    assert edges == 3

    ui.select("email_send_1")
    subject = page.get_by_label("Subject", exact=True)
    subject.fill("Welcome aboard, {{ first_name }}")
    subject.press("Enter")
    ui.settle()
    summary = ui.node("email_send_1").locator(".mawb-node-summary")
    assert summary.inner_text() == "Welcome aboard, {{ first_name }}"

    ui.save_version("first version")
    page.get_by_text("Saved new_flow v1").wait_for(timeout=SETTLE_MS)
    ui.select("email_send_1")
    subject = page.get_by_label("Subject", exact=True)
    subject.fill("Your first week with us")
    subject.press("Enter")
    ui.settle()
    ui.save_version("clearer subject")
    page.get_by_text("Saved new_flow v2: 1 param changed").wait_for(timeout=SETTLE_MS)
    assert page.get_by_text("v1 → v2:").count() == 1
    store = VersionStore(workbench[1])
    assert store.versions("new_flow") == [1, 2]
    assert store.load("new_flow", 2).node("email_send_1").params["subject"] == (
        "Your first week with us"
    )
    assert [(e.source, e.branch, e.target) for e in store.load("new_flow").edges] == [
        ("manual_trigger_1", None, "if_condition_1"),
        ("if_condition_1", "true", "email_send_1"),
        ("if_condition_1", "false", "sms_send_1"),
    ]
    # Switch cases edited in the config panel become the switch's output handles.
    ui.drop("switch_case", 120, 440)
    handles = ui.node("switch_case_1").locator(".react-flow__handle.source")
    wait_for_count(handles, 2)
    assert handles.evaluate_all("els => els.map(el => el.dataset.handleid)") == [
        "case_1", "default"
    ]
    cases = page.get_by_label("Cases", exact=True)
    cases.fill('[{"name": "vip", "condition": "score > 80"}, '
               '{"name": "warm", "condition": "score > 40"}]')
    cases.press("Control+Enter")
    ui.settle()
    wait_for_count(handles, 3)
    assert handles.evaluate_all("els => els.map(el => el.dataset.handleid)") == [
        "vip", "warm", "default"
    ]
    ui.node("switch_case_1").locator(".mawb-node-title").click()
    page.keyboard.press("Delete")
    ui.node("switch_case_1").wait_for(state="detached", timeout=SETTLE_MS)
    ui.settle()

    # Auto layout re-creates the canvas laid out left to right; a taller window shows the
    # config panel and validation under it in the README picture.
    page.get_by_role("button", name="Auto layout").click()
    ui.settle()
    ui.select("email_send_1")
    page.set_viewport_size({"width": 1440, "height": 1500})
    ui.settle()
    page.get_by_text("Builder · New flow").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    builder_shot = ui.shot("builder")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.get_by_role("link", name="Home").first.click()
    page.get_by_text("Saved flows").wait_for(timeout=SETTLE_MS)
    ui.settle()
    metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert metrics[:2] == ["1", "500"]
    home_shot = ui.shot("home")
    if os.environ.get("MAWB_PUBLISH_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(home_shot, DOCS_SCREENSHOTS / "home.png")
        shutil.copyfile(builder_shot, DOCS_SCREENSHOTS / "builder.png")
