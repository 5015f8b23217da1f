"""Benchmark: how the Builder page feels in a real browser on large flows.

Two numbers per flow size (default 50 and 200 nodes), measured in Debian chromium driven by
Playwright against `streamlit run app.py` on a loopback port, with a temporary workspace holding
one generated flow (repeated blocks of email -> delay -> if/else -> sms | update -> merge):

- first render: from navigating to the Builder until every node of the flow is on the canvas
  and Streamlit is idle (script run, component load, React Flow layout);
- canvas round trip: from dropping a step from the palette (the end of the drag gesture) until
  Python has validated the new graph and the canvas shows the step outlined in red ("no trigger
  leads here"), i.e. the edit reached Python and the highlighted result came back on screen
  (includes the canvas's 250 ms debounce). Repeated, median and max reported.

And the settle time of each kind of canvas and form action an analyst makes on a small flow
(the welcome template): drop a step, connect two, select one (its settings open in the
drawer), edit a field (the canvas shows the new summary), undo (Ctrl+Z); each from the end of
the gesture until its result is on screen and Streamlit is idle. `--repo` runs the same
measurement against another checkout (e.g. the commit before a change) for a before/after.

    python bench/ui.py [--sizes 50 200] [--edits 5] [--actions 3] [--repo DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mawb.model import Flow
from mawb.versions import VersionStore

# The Chromium/Streamlit harness is test support (tests/support), not part of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.browser import chromium_path, launch_chromium, serve_streamlit

REPO = Path(__file__).resolve().parents[1]
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
TIMEOUT_MS = 120_000


def build_flow(size: int) -> Flow:
    """A valid flow of exactly ``size`` nodes (size >= 2)."""
    flow = Flow.new(f"bench_{size}", f"Benchmark flow ({size} steps)").add("start",
                                                                          "manual_trigger")
    previous, block = "start", 0
    while len(flow.nodes) + 6 <= size:
        names = [f"{kind}_{block}" for kind in ("mail", "wait", "check", "sms", "bump", "join")]
        mail, wait, check, sms, bump, join = names
        (flow.add(mail, "email_send", subject=f"Step {block}")
             .add(wait, "delay_action", days=1)
             .add(check, "if_condition", condition=f"engagement_score > {block % 10 / 10}")
             .add(sms, "sms_send", body="Hi {{ first_name }}")
             .add(bump, "data_update", increment={"score": 1})
             .add(join, "merge_branches", mode="any")
             .connect(previous, mail).connect(mail, wait).connect(wait, check)
             .connect(check, sms, "true").connect(check, bump, "false")
             .connect(sms, join).connect(bump, join))
        previous, block = join, block + 1
    while len(flow.nodes) < size:
        tail = f"tail_{len(flow.nodes)}"
        flow.add(tail, "delay_action", hours=1).connect(previous, tail)
        previous = tail
    return flow


def wait_for_nodes(page: Any, count: int) -> None:
    nodes = page.locator(".react-flow__node")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while nodes.count() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {nodes.count()} of {count} nodes rendered")
        page.wait_for_timeout(20)


def first_render(browser: Any, url: str, size: int) -> float:
    """Seconds from clicking Builder on the home page to the full flow on the canvas."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(url)
    page.get_by_text("Marketing Automation Workbench").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    started = time.perf_counter()
    page.get_by_role("link", name="Builder").first.click()
    wait_for_nodes(page, size)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def round_trips(browser: Any, url: str, size: int, edits: int) -> list[float]:
    """Seconds from a palette drop to the validated, red-outlined step on screen."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(url)
    page.get_by_role("link", name="Builder").first.click()
    wait_for_nodes(page, size)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    timings = []
    for index in range(1, edits + 1):
        node_id = f"sms_send_{index}"
        palette = page.locator('[data-palette-type="sms_send"]')
        pane = page.locator(".react-flow__pane")
        palette.drag_to(pane, target_position={"x": 200 + 60 * index, "y": 80})
        started = time.perf_counter()  # the drop: Playwright's drag gesture itself not counted
        page.locator(f'.react-flow__node[data-id="{node_id}"] .mawb-node-error').wait_for(
            timeout=TIMEOUT_MS
        )
        timings.append(time.perf_counter() - started)
        page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
        page.wait_for_timeout(300)
    page.close()
    return timings


def _settled(page: Any, started: float, done: Any) -> float:
    """Seconds from `started` until `done()` holds and Streamlit is idle."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the action never showed its result")
        page.wait_for_timeout(10)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    return time.perf_counter() - started


def action_settle_times(browser: Any, url: str, repeats: int) -> dict[str, list[float]]:
    """Per action kind, the settle times of `repeats` tries on the welcome template."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(url)
    page.get_by_role("link", name="Builder").first.click()
    nodes = page.locator(".react-flow__node")
    wait_for_nodes(page, 7)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    found: dict[str, list[float]] = {"drop": [], "connect": [], "select": [], "edit": [],
                                     "undo": []}
    for index in range(1, repeats + 1):
        node_id = f"delay_action_{index}"
        page.locator('[data-palette-type="delay_action"]').drag_to(
            page.locator(".react-flow__pane"), target_position={"x": 60 + 40 * index, "y": 40})
        started = time.perf_counter()
        error = page.locator(f'.react-flow__node[data-id="{node_id}"] .mawb-node-error')
        found["drop"].append(_settled(page, started, lambda e=error: e.count() == 1))
        page.wait_for_timeout(300)
        source = page.locator('.react-flow__node[data-id="engaged"] '
                              '.react-flow__handle.source[data-handleid="false"]')
        source.drag_to(page.locator(f'.react-flow__node[data-id="{node_id}"] '
                                    ".react-flow__handle.target"))
        started = time.perf_counter()
        found["connect"].append(_settled(page, started, lambda e=error: e.count() == 0))
        page.wait_for_timeout(300)
        page.locator('.react-flow__node[data-id="welcome"] .mawb-node-title').click()
        started = time.perf_counter()
        subject = page.get_by_label("Subject", exact=True)
        found["select"].append(_settled(page, started, lambda f=subject: f.count() == 1))
        page.wait_for_timeout(300)
        text = f"Welcome, take {index}"
        subject.fill(text)
        subject.press("Enter")
        started = time.perf_counter()
        summary = page.locator('.react-flow__node[data-id="welcome"] .mawb-node-summary')
        found["edit"].append(_settled(page, started,
                                      lambda s=summary, t=text: s.inner_text() == t))
        page.wait_for_timeout(300)
        if page.get_by_role("button", name="Undo").count():
            before = summary.inner_text()
            page.locator("h2").filter(has_text="Builder").first.click()
            page.keyboard.press("Control+z")
            started = time.perf_counter()
            found["undo"].append(_settled(page, started,
                                          lambda s=summary, b=before: s.inner_text() != b))
            page.wait_for_timeout(300)
        page.locator('.react-flow__node[data-id="engaged"] .mawb-node-title').click()
        page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
        page.wait_for_timeout(300)
    assert nodes.count() >= 7
    page.close()
    return found


def measure_actions(browser: Any, repo: Path, repeats: int) -> dict[str, list[float]]:
    import mawb

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        VersionStore(home).save(mawb.load_template("lead_welcome_v1"), "benchmark")
        with serve_streamlit(repo / "app.py", cwd=repo, home=home) as url:
            return action_settle_times(browser, url, repeats)


def measure(browser: Any, size: int, edits: int, repo: Path = REPO) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        VersionStore(home).save(build_flow(size), "benchmark")
        with serve_streamlit(repo / "app.py", cwd=repo, home=home) as url:
            render = first_render(browser, url, size)
            trips = round_trips(browser, url, size, edits)
    return {"nodes": size, "first_render_s": render, "round_trip_median_s":
            statistics.median(trips), "round_trip_max_s": max(trips)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--actions", type=int, default=3,
                        help="tries of each canvas/form action (0: skip)")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="the checkout whose app.py is measured (default: this one)")
    args = parser.parse_args(argv)
    if chromium_path() is None:
        print("Debian chromium is not installed", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        actions = measure_actions(browser, args.repo, args.actions) if args.actions else {}
        results = [measure(browser, size, args.edits, args.repo) for size in args.sizes]
        browser.close()
    if actions:
        print(f"{'action':>8} {'settle p50':>11} {'settle max':>11}  (welcome template, "
              f"{args.actions} tries)")
        for name, times in actions.items():
            if times:
                print(f"{name:>8} {statistics.median(times):>10.2f}s {max(times):>10.2f}s")
            else:
                print(f"{name:>8} {'—':>11} {'—':>11}  (not in this checkout)")
    print(f"{'nodes':>6} {'first render':>13} {'round trip p50':>15} {'round trip max':>15}")
    for row in results:
        print(f"{row['nodes']:>6} {row['first_render_s']:>12.2f}s "
              f"{row['round_trip_median_s']:>14.2f}s {row['round_trip_max_s']:>14.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
