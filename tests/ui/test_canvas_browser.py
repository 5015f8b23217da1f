"""Drive mawb's flow canvas in Debian chromium inside a real `streamlit run`.

These tests prove the component loads from the installed package (manifest + asset files),
renders custom nodes, and that palette drag-and-drop, handle-to-handle connections, selection
and deletion reach Python as the returned graph.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.browser import serve_streamlit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("canvas_app.py")
ARTIFACTS = REPO / "artifacts"
SETTLE_SECONDS = 20.0



@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with serve_streamlit(APP, cwd=REPO, log_path=log_path, timeout=60) as url:
        yield url
    log_text = log_path.read_text(errors="replace")
    assert "Traceback" not in log_text, log_text


class CanvasPage:
    """A page showing the canvas app, with the console errors it logged."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def node(self, node_id: str) -> Any:
        return self.page.locator(f'.react-flow__node[data-id="{node_id}"]')

    def returned_graph(self) -> Any:
        return json.loads(self.page.locator('[data-testid="stCode"] code').inner_text())

    def wait_for_graph(self, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Wait until the script reran and Python returned a graph `accept` likes."""
        deadline = time.monotonic() + SETTLE_SECONDS
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.returned_graph()
            except (ValueError, Exception):
                last = None
            if isinstance(last, dict) and accept(last):
                self._wait_idle()
                return last
            time.sleep(0.2)
        raise AssertionError(f"Python never received the expected graph; last: {last}")

    def _wait_idle(self) -> None:
        # Streamlit shows its status widget while a rerun is in progress.
        self.page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=15000
        )
        self.page.wait_for_timeout(300)


@pytest.fixture
def canvas(browser: Any, app_url: str) -> Iterator[CanvasPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    wrapped = CanvasPage(page)
    page.goto(app_url)
    page.locator(".react-flow__node").first.wait_for(timeout=30000)
    wrapped._wait_idle()
    yield wrapped
    context.close()
    assert wrapped.errors == [], f"browser console errors: {wrapped.errors}"


def test_nodes_palette_and_diagnostics_render(canvas: CanvasPage) -> None:
    page = canvas.page
    assert page.locator(".react-flow__node").count() == 3
    assert canvas.node("check").locator(".mawb-node-title").inner_text() == "Opted in?"
    assert page.locator(".mawb-palette-item").count() == 23
    assert page.locator(".react-flow__minimap").count() == 1
    assert page.locator(".mawb-palette-group h4").all_inner_texts() == [
        "TRIGGERS",
        "ACTIONS",
        "LOGIC",
        "INTEGRATIONS",
    ] or page.locator(".mawb-palette-group h4").all_inner_texts() == [
        "Triggers",
        "Actions",
        "Logic",
        "Integrations",
    ]
    # Icons are bundled SVGs, not emoji: every palette item has a known one.
    icons = page.locator(".mawb-palette-item svg.mawb-icon").evaluate_all(
        "els => els.map(el => el.dataset.icon)"
    )
    assert len(icons) == 23 and "dot" not in icons
    # Branch handles are labelled and carry the branch name as their id; triggers get no input.
    handles = canvas.node("check").locator(".react-flow__handle.source")
    assert handles.evaluate_all("els => els.map(el => el.dataset.handleid)") == ["true", "false"]
    assert canvas.node("check").locator(".mawb-handle-label").all_inner_texts() == ["true", "false"]
    assert canvas.node("start").locator(".react-flow__handle.target").count() == 0
    # The diagnostic is visible on the node, which is outlined; counts show as badges.
    welcome = canvas.node("welcome")
    assert "has-error" in (welcome.locator(".mawb-node").get_attribute("class") or "")
    assert welcome.locator(".mawb-node-error").inner_text() == (
        "Template refers to unknown attribute 'frist_name'"
    )
    assert "in 10" in welcome.locator(".mawb-node-counts").inner_text()
    outline = welcome.locator(".mawb-node").evaluate("el => getComputedStyle(el).borderLeftColor")
    assert outline == "rgb(220, 38, 38)"
    # Nothing was edited yet, so Python got None.
    assert canvas.returned_graph() is None


def test_palette_drop_creates_a_node(canvas: CanvasPage) -> None:
    page = canvas.page
    page.locator('[data-palette-type="sms_send"]').drag_to(
        page.locator(".react-flow__pane"), target_position={"x": 420, "y": 420}
    )
    graph = canvas.wait_for_graph(lambda g: any(n["type"] == "sms_send" for n in g["nodes"]))
    created = next(n for n in graph["nodes"] if n["type"] == "sms_send")
    assert created["id"] == "sms_send_1"
    assert created["data"]["label"] == "Send SMS"
    assert created["data"]["icon"] == "message"
    assert created["position"] == {
        "x": round(created["position"]["x"]),
        "y": round(created["position"]["y"]),
    }
    assert graph["selected"] == "sms_send_1"
    assert {n["id"] for n in graph["nodes"]} == {"start", "check", "welcome", "sms_send_1"}
    # React Flow internals never reach Python.
    assert set(created) == {"id", "type", "position", "data"}
    assert canvas.node("sms_send_1").count() == 1

    # A second drop of the same type gets the next id.
    page.locator('[data-palette-type="sms_send"]').drag_to(
        page.locator(".react-flow__pane"), target_position={"x": 150, "y": 60}
    )
    graph = canvas.wait_for_graph(lambda g: any(n["id"] == "sms_send_2" for n in g["nodes"]))
    assert len(graph["nodes"]) == 5


def test_connecting_a_branch_handle_sets_source_handle(canvas: CanvasPage) -> None:
    source = canvas.node("check").locator('.react-flow__handle[data-handleid="true"]')
    target = canvas.node("welcome").locator(".react-flow__handle.target")
    source.drag_to(target)
    graph = canvas.wait_for_graph(lambda g: any(e["target"] == "welcome" for e in g["edges"]))
    new_edges = [e for e in graph["edges"] if e["target"] == "welcome"]
    assert len(new_edges) == 1
    assert new_edges[0]["source"] == "check"
    assert new_edges[0]["sourceHandle"] == "true"
    assert set(new_edges[0]) == {"id", "source", "target", "sourceHandle"}
    # The original edge is untouched.
    assert {"id": "e1", "source": "start", "target": "check", "sourceHandle": None} in graph[
        "edges"
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    canvas.page.screenshot(path=str(ARTIFACTS / "canvas.png"))


def test_select_then_delete_removes_node_and_its_edges(canvas: CanvasPage) -> None:
    canvas.node("check").locator(".mawb-node-title").click()
    graph = canvas.wait_for_graph(lambda g: g["selected"] == "check")
    assert len(graph["nodes"]) == 3
    canvas.node("check").locator(".mawb-node-title").click()
    canvas.page.keyboard.press("Delete")
    graph = canvas.wait_for_graph(lambda g: all(n["id"] != "check" for n in g["nodes"]))
    assert graph["edges"] == []
    assert graph["selected"] is None


def test_moving_a_node_sends_its_rounded_position(canvas: CanvasPage) -> None:
    page = canvas.page
    title = canvas.node("start").locator(".mawb-node-title")
    box = title.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + 5, box["y"] + 5 + 12 * step)
        page.wait_for_timeout(40)
    # Mid-drag nothing has been sent (sending would rerun the script during the drag).
    assert canvas.returned_graph() is None
    page.mouse.up()
    graph = canvas.wait_for_graph(lambda g: g["nodes"][0]["position"]["y"] != 120)
    start = next(n for n in graph["nodes"] if n["id"] == "start")
    assert start["position"]["y"] > 120
    assert isinstance(start["position"]["x"], int) and isinstance(start["position"]["y"], int)


def test_read_only_hides_palette_and_blocks_deleting(canvas: CanvasPage, app_url: str) -> None:
    page = canvas.page
    page.goto(f"{app_url}/?read_only=1")
    page.locator(".react-flow__node").first.wait_for(timeout=30000)
    canvas._wait_idle()
    assert page.locator(".mawb-palette").count() == 0
    # A read-only preview has no minimap covering the flow.
    assert page.locator(".react-flow__minimap").count() == 0
    canvas.node("check").locator(".mawb-node-title").click()
    page.keyboard.press("Delete")
    page.wait_for_timeout(1000)
    assert page.locator(".react-flow__node").count() == 3
    assert page.locator(".react-flow__handle.connectable").count() == 0
    # Dragging from a branch handle draws no edge.
    canvas.node("check").locator('.react-flow__handle[data-handleid="true"]').drag_to(
        canvas.node("welcome").locator(".react-flow__handle.target"), force=True
    )
    page.wait_for_timeout(1000)
    assert page.locator(".react-flow__edge").count() == 1


def _runs(canvas: CanvasPage) -> int:
    text = canvas.page.get_by_text("runs=").inner_text()
    return int(text.split("=", 1)[1])


def test_python_annotations_reach_the_canvas_without_a_rerun_loop(
    canvas: CanvasPage, app_url: str
) -> None:
    page = canvas.page
    page.goto(f"{app_url}/?mode=builder")
    page.locator(".react-flow__node").first.wait_for(timeout=30000)
    canvas._wait_idle()
    # Python marked the email (no incoming edge) in its first run.
    assert canvas.node("welcome").locator(".mawb-node-error").inner_text() == (
        "Not connected: draw an edge into this step"
    )
    page.locator('[data-palette-type="delay_action"]').drag_to(
        page.locator(".react-flow__pane"), target_position={"x": 420, "y": 420}
    )
    canvas.wait_for_graph(lambda g: any(n["id"] == "delay_action_1" for n in g["nodes"]))
    # The rerun annotated the new node and the canvas showed it.
    error = canvas.node("delay_action_1").locator(".mawb-node-error")
    error.wait_for(timeout=10000)
    assert error.inner_text() == "Not connected: draw an edge into this step"
    # Connecting clears the annotation on the next rerun.
    canvas.node("check").locator('.react-flow__handle[data-handleid="false"]').drag_to(
        canvas.node("delay_action_1").locator(".react-flow__handle.target")
    )
    canvas.wait_for_graph(lambda g: any(e["target"] == "delay_action_1" for e in g["edges"]))
    page.wait_for_function(
        """() => {
          const host = [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')];
          const root = host[0] && host[0].shadowRoot;
          const node = root && root.querySelector('.react-flow__node[data-id="delay_action_1"]');
          return node && !node.querySelector('.mawb-node-error');
        }""",
        timeout=10000,
    )
    # Applying Python's annotated graph is not sent back as an edit: the reruns stop.
    runs = _runs(canvas)
    page.wait_for_timeout(1500)
    assert _runs(canvas) == runs
    assert canvas.page.locator(".react-flow__node").count() == 4
