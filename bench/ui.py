"""Benchmark: how the Builder page feels in a real browser.

Measured in Debian chromium driven by Playwright against `streamlit run app.py` on a loopback
port, each server on its own copy of a seeded workspace (synthetic contacts and events, one
simulated run of the welcome flow, the flow saved as a version):

- action settle times: each kind of canvas and form action an analyst makes on the welcome
  flow (drop a step, connect two, select one so its settings open in the drawer, edit a field
  so the canvas shows the new summary, undo with Ctrl+Z), from the end of the gesture until
  its result is on screen and Streamlit is idle; with the server's CPU time per action (user +
  system of the Streamlit process over the same span: much less sensitive to the machine's
  load than the wall clock);
- page loads: Builder, Monitor and Experiments, from navigating to the page's URL (a fresh
  browser tab) until its content is drawn and Streamlit is idle;
- on generated flows of `--sizes` steps (repeated blocks of email -> delay -> if/else -> sms |
  update -> merge): first render (from clicking Builder on the home page until every node is
  on the canvas) and the canvas round trip (a palette drop until the step is outlined in red,
  i.e. the edit reached Python and the validated result came back on screen).

`--before DIR` measures another checkout too (e.g. an export of the commit before a change),
alternating the two servers round by round so both see the same machine conditions, and
prints before/after against the 1 s target. The machine's load (`uptime`) is printed at the
start and the end.

    python bench/ui.py [--before DIR] [--rounds 2] [--actions 3] [--sizes 50 200] [--edits 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
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
TARGET_S = 1.0
ACTIONS = ("drop", "connect", "select", "edit", "undo")
PAGES = {"Builder": ".react-flow__node", "Monitor": "h1", "Experiments": "h1"}
"""Page (URL path) -> what is on screen once it is drawn."""
FLOW_ID = "lead_welcome_v1"


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


@dataclass
class Timings:
    """Per action (or page) the wall-clock seconds, and the server's CPU seconds."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, wall: float, cpu: float | None = None) -> None:
        self.wall.setdefault(name, []).append(wall)
        if cpu is not None:
            self.cpu.setdefault(name, []).append(cpu)

    def extend(self, other: Timings) -> None:
        for name, values in other.wall.items():
            self.wall.setdefault(name, []).extend(values)
        for name, values in other.cpu.items():
            self.cpu.setdefault(name, []).extend(values)


class ServerClock:
    """CPU seconds (user + system, all threads) used by the Streamlit server at `url`."""

    def __init__(self, url: str) -> None:
        import psutil

        port = url.rsplit(":", 1)[1]
        self.process = None
        for child in psutil.Process().children():
            try:
                command = child.cmdline()
            except psutil.Error:  # a browser helper that already exited
                continue
            if "streamlit" in command and port in command:
                self.process = child

    def __call__(self) -> float:
        if self.process is None:
            return float("nan")
        times = self.process.cpu_times()
        return float(times.user + times.system)


def _settled(page: Any, started: float, done: Any) -> float:
    """Seconds from `started` until `done()` holds and Streamlit is idle."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the action never showed its result")
        page.wait_for_timeout(10)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    return time.perf_counter() - started


def action_settle_times(browser: Any, url: str, repeats: int) -> Timings:
    """Per action kind, the settle times of `repeats` tries on the welcome flow."""
    clock = ServerClock(url)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    # The canvas shows some results itself at once (an outline, a cleared error); settled
    # also means Python answered: a message came back from the server after the gesture.
    answers: list[float] = []
    page.on("websocket", lambda socket: socket.on(
        "framereceived", lambda _: answers.append(time.perf_counter())))
    page.goto(url)
    page.get_by_role("link", name="Builder").first.click()
    nodes = page.locator(".react-flow__node")
    wait_for_nodes(page, 7)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    found = Timings()

    def timed(name: str, shown: Any) -> None:
        started, cpu = time.perf_counter(), clock()
        wall = _settled(page, started,
                        lambda: shown() and bool(answers) and answers[-1] > started)
        found.add(name, wall, clock() - cpu)
        page.wait_for_timeout(300)

    for index in range(1, repeats + 1):
        node_id = f"delay_action_{index}"
        page.locator('[data-palette-type="delay_action"]').drag_to(
            page.locator(".react-flow__pane"), target_position={"x": 60 + 40 * index, "y": 40})
        error = page.locator(f'.react-flow__node[data-id="{node_id}"] .mawb-node-error')
        timed("drop", lambda e=error: e.count() == 1)
        source = page.locator('.react-flow__node[data-id="engaged"] '
                              '.react-flow__handle.source[data-handleid="false"]')
        source.drag_to(page.locator(f'.react-flow__node[data-id="{node_id}"] '
                                    ".react-flow__handle.target"))
        timed("connect", lambda e=error: e.count() == 0)
        page.locator('.react-flow__node[data-id="welcome"] .mawb-node-title').click()
        subject = page.get_by_label("Subject", exact=True)
        timed("select", lambda f=subject: f.count() == 1)
        text = f"Welcome, take {index}"
        subject.fill(text)
        subject.press("Enter")
        summary = page.locator('.react-flow__node[data-id="welcome"] .mawb-node-summary')
        timed("edit", lambda s=summary, t=text: s.inner_text() == t)
        if page.get_by_role("button", name="Undo").count():
            before = summary.inner_text()
            page.locator("h2").filter(has_text="Builder").first.click()
            page.keyboard.press("Control+z")
            timed("undo", lambda s=summary, b=before: s.inner_text() != b)
        page.locator('.react-flow__node[data-id="engaged"] .mawb-node-title').click()
        page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
        page.wait_for_timeout(300)
    assert nodes.count() >= 7
    page.close()
    return found


def page_loads(browser: Any, url: str) -> Timings:
    """Seconds from opening each page's URL in a fresh tab until it is drawn and idle."""
    found = Timings()
    clock = ServerClock(url)
    for name, marker in PAGES.items():
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        started, cpu = time.perf_counter(), clock()
        page.goto(f"{url}/{name}")
        page.locator(marker).first.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
        found.add(name, time.perf_counter() - started, clock() - cpu)
        page.close()
    return found


def seed_workspace(home: Path) -> None:
    """Synthetic contacts and events, one simulated run of the welcome flow, and that flow
    as a saved version (what the Builder opens)."""
    import mawb
    from mawb.data import synthetic_contacts, synthetic_events
    from mawb.engine import Workspace
    from mawb.simulate import simulate

    contacts = synthetic_contacts(300, seed=3)
    flow = mawb.load_template(FLOW_ID)
    simulate(flow, contacts, days=3, seed=1, progress=False, home=home)
    Workspace(home).import_events(synthetic_events(contacts, days=7, seed=3))
    if not VersionStore(home).flow_ids():  # the simulation saves the flow it ran
        VersionStore(home).save(flow, "benchmark")


def measure_round(browser: Any, repo: Path, seeded: Path, repeats: int
                  ) -> tuple[Timings, Timings]:
    """One server of `repo` on a fresh copy of the seeded workspace: actions, page loads."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        shutil.copytree(seeded, home)
        with serve_streamlit(repo / "app.py", cwd=repo, home=home) as url:
            actions = action_settle_times(browser, url, repeats) if repeats else Timings()
            return actions, page_loads(browser, url)


def measure(browser: Any, size: int, edits: int, repo: Path = REPO) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        VersionStore(home).save(build_flow(size), "benchmark")
        with serve_streamlit(repo / "app.py", cwd=repo, home=home) as url:
            render = first_render(browser, url, size)
            trips = round_trips(browser, url, size, edits)
    return {"nodes": size, "first_render_s": render, "round_trip_median_s":
            statistics.median(trips), "round_trip_max_s": max(trips)}


def _cell(values: list[float] | None) -> str:
    if not values:
        return f"{'—':>6} {'—':>6}"
    return f"{statistics.median(values):>5.2f}s {max(values):>5.2f}s"


def _cpu(values: list[float] | None) -> str:
    return f"{statistics.median(values):>6.2f}s" if values else f"{'—':>7}"


def report(title: str, names: tuple[str, ...], runs: dict[str, Timings], target: bool) -> None:
    labels = list(runs)
    print(f"\n{title}: p50 / max wall-clock, p50 server CPU")
    header = "".join(f" | {label:^22}" for label in labels)
    print(f"{'':>12}{header}" + ("  | target ≤ 1 s (p50, after)" if target else ""))
    for name in names:
        cells = "".join(f" | {_cell(run.wall.get(name))} {_cpu(run.cpu.get(name))}"
                        for run in runs.values())
        last = runs[labels[-1]].wall.get(name)
        verdict = ""
        if target and last:
            verdict = "  | met" if statistics.median(last) <= TARGET_S else "  | NOT met"
        print(f"{name:>12}{cells}{verdict}")


def _uptime() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"load average {load} on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[50, 200])
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--actions", type=int, default=3,
                        help="tries of each canvas/form action per round (0: skip)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="servers per checkout, alternating with --before")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout to measure in the same run (the 'before')")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="the checkout measured as 'after' (default: this one)")
    args = parser.parse_args(argv)
    if chromium_path() is None:
        print("Debian chromium is not installed", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    checkouts = {"before": args.before, "after": args.repo} if args.before else {
        "this checkout": args.repo}
    actions = {label: Timings() for label in checkouts}
    loads = {label: Timings() for label in checkouts}
    print(f"start: {_uptime()}")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        seeded = Path(folder) / "seeded"
        seed_workspace(seeded)
        browser = launch_chromium(playwright)
        for _ in range(args.rounds):
            for label, repo in checkouts.items():
                done, opened = measure_round(browser, repo.resolve(), seeded, args.actions)
                actions[label].extend(done)
                loads[label].extend(opened)
        results = [measure(browser, size, args.edits, args.repo) for size in args.sizes]
        browser.close()
    print(f"end: {_uptime()}")
    if args.actions:
        report(f"Action settle times (welcome flow, {args.actions} tries x {args.rounds} rounds)",
               ACTIONS, actions, target=True)
    report(f"Page loads ({args.rounds} rounds)", tuple(PAGES), loads, target=False)
    if results:
        print(f"\n{'nodes':>6} {'first render':>13} {'round trip p50':>15} {'round trip max':>15}")
    for row in results:
        print(f"{row['nodes']:>6} {row['first_render_s']:>12.2f}s "
              f"{row['round_trip_median_s']:>14.2f}s {row['round_trip_max_s']:>14.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
