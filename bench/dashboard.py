"""Benchmark: dashboard queries on a demo store, and first render of the analyst pages.

Two sets of numbers:

- query times: every query the Monitor and Data pages run (mawb.analytics), on a store holding
  the demo set (3,000 contacts and their events) and simulated runs of two flows, each timed
  with a fresh read-only connection like the pages use (median and max of `--repeat` runs),
  plus the whole monitor snapshot including opening the connection;
- time to first render of Templates, Monitor, Experiments and Data in Debian chromium driven
  by Playwright against `streamlit run app.py`: from clicking the page in the sidebar until
  the page's content is on screen (canvases drawn, charts plotted) and Streamlit is idle. The
  first visit of each page (cold: imports, first component load) and the median of later
  visits are reported; and on Experiments, click "Run simulation" -> its chart on screen
  (target <= 2 s on the demo workspace).

    python bench/dashboard.py [--home DIR] [--repeat 20] [--visits 3] [--no-browser]

A `--home` without a store (or a temporary folder when none is given) is first seeded with the
demo-like store (a few minutes on a busy machine; the simulations are not timed).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mawb
from mawb import analytics
from mawb.data import demo_contacts, demo_events
from mawb.simulate import simulate
from mawb.ui.monitor_view import read_snapshot
from mawb.ui.reader import WorkspaceReader
from mawb.versions import VersionStore

# The Chromium/Streamlit harness is test support (tests/support), not part of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.browser import chromium_path, launch_chromium, serve_streamlit

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[1]
FLOWS = (("lead_welcome_v1", 14), ("trial_to_paid_v1", 14))
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
TIMEOUT_MS = 180_000


def seed(home: Path) -> None:
    """Demo contacts and events, then a simulated history of each flow in FLOWS."""
    contacts, events = demo_contacts(), demo_events()
    for flow_id, days in FLOWS:
        started = time.perf_counter()
        simulate(mawb.load_template(flow_id), contacts, events=events, days=days,
                 progress=False, home=home)
        print(f"  seeded {flow_id} ({days} days) in {time.perf_counter() - started:.0f} s",
              flush=True)


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and max milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def query_times(home: Path, repeat: int) -> dict[str, tuple[float, float, float]]:
    """Per query: median and max ms with a fresh connection each (as the pages read), and the
    median on one open connection (the query alone)."""
    reader = WorkspaceReader(home)
    flow = VersionStore(home).load(FLOWS[0][0])
    with reader.read() as connection:
        contact = str(analytics.find_contacts(connection, flow.id, "c0").iloc[0]["contact_id"])
    queries: dict[str, Callable[[Any], object]] = {
        "kpis": lambda c: analytics.kpis(c, flow.id),
        "funnel": lambda c: analytics.funnel(c, flow),
        "run_status": lambda c: analytics.run_status(c, flow.id),
        "daily_activity": lambda c: analytics.daily_activity(c, flow.id),
        "errors + error_summary": lambda c: (analytics.errors(c, flow.id),
                                             analytics.error_summary(c, flow.id)),
        "find_contacts": lambda c: analytics.find_contacts(c, flow.id, "northwind"),
        "where_is": lambda c: analytics.where_is(c, flow.id, contact),
        "store_counts + events_by_name": lambda c: (analytics.store_counts(c),
                                                    analytics.events_by_name(c)),
    }

    def fresh(query: Callable[[Any], object]) -> Callable[[], object]:
        def run() -> object:
            with reader.read() as connection:
                return query(connection)
        return run

    # Fresh connections first: while any connection is open, DuckDB reuses the open database
    # in this process and a "fresh" connection would cost nothing.
    opened = {name: timed(fresh(query), repeat) for name, query in queries.items()}
    results = {"open a read-only connection": (*timed(fresh(lambda c: None), repeat), 0.0)}
    snapshot = timed(lambda: read_snapshot(reader, flow), repeat)
    with reader.read() as connection:
        for name, query in queries.items():
            alone, _ = timed(lambda query=query: query(connection), repeat)
            results[name] = (*opened[name], alone)
    results["monitor snapshot (one connection, every query a refresh runs)"] = (*snapshot, 0.0)
    return results


# -- browser ---------------------------------------------------------------------------------
def _count(page: Any, selector: str) -> int:
    # Playwright's CSS locators pierce the canvas's shadow root (document.querySelector does not).
    return int(page.locator(selector).count())


TEMPLATE_NODES = sum(len(flow.nodes) for flow in mawb.list_templates())
PAGES: dict[str, Callable[[Any], bool]] = {
    # page -> true once its content is drawn
    "Templates": lambda page: _count(page, ".react-flow__node") >= TEMPLATE_NODES,
    "Monitor": lambda page: (_count(page, ".react-flow__node") > 0
                             and _count(page, ".js-plotly-plot >> visible=true") >= 2
                             and _count(page, "[data-testid=stMetric]") > 0),
    "Experiments": lambda page: (_count(page, "button:has-text('Run simulation')") > 0
                                 and _count(page, "[data-testid=stSlider]") > 0),
    "Data": lambda page: (_count(page, "[data-testid=stFileUploader]") == 2
                          and _count(page, "[data-testid=stMetric]") > 0),
}


def page_render_times(home: Path, visits: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    if chromium_path() is None:
        raise SystemExit("Debian chromium is needed for the browser numbers (--no-browser)")
    results: dict[str, list[float]] = {name: [] for name in PAGES}
    with serve_streamlit(REPO / "app.py", cwd=REPO, home=home, timeout=120) as url:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.goto(url)
            page.get_by_test_id("stSidebarNav").wait_for(timeout=TIMEOUT_MS)
            page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
            for _ in range(visits):
                for name, ready in PAGES.items():
                    results[name].append(_visit(page, name, ready))
            results[RUN_TO_CHART] = [_run_to_chart(page) for _ in range(visits)]
            browser.close()
    return results


RUN_TO_CHART = "Experiments run"  # click "Run simulation" -> its chart drawn, Streamlit idle
RUN_TARGET_MS = 2000


def _run_to_chart(page: Any) -> float:
    """Milliseconds from clicking "Run simulation" on the Experiments page (its defaults: the
    demo population) until the run's chart is drawn and Streamlit is idle."""
    if not page.url.endswith("/Experiments"):
        _visit(page, "Experiments", PAGES["Experiments"])
    button = page.locator("button:has-text('Run simulation')").first
    started = time.perf_counter()
    button.click()
    # The status widget shows while the script runs; wait for it to come and go.
    with contextlib.suppress(Exception):
        page.get_by_test_id("stStatusWidget").wait_for(state="visible", timeout=2000)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    elapsed = (time.perf_counter() - started) * 1000
    page.wait_for_timeout(300)
    return elapsed


def _visit(page: Any, name: str, ready: Callable[[Any], bool]) -> float:
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=name)
    started = time.perf_counter()
    link.click()
    page.wait_for_url(f"**/{name}", timeout=TIMEOUT_MS)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not ready(page):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not finish drawing")
        page.wait_for_timeout(50)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    elapsed = (time.perf_counter() - started) * 1000
    page.wait_for_timeout(300)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path,
                        help="workspace to measure (seeded first when it has no store)")
    parser.add_argument("--repeat", type=int, default=20, help="runs per query")
    parser.add_argument("--visits", type=int, default=3, help="visits per page")
    parser.add_argument("--no-browser", action="store_true", help="query times only")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mawb-bench-") as scratch:
        home = options.home or Path(scratch) / "home"
        if not WorkspaceReader(home).has_store():
            print(f"building a demo-like store in {home} ...", flush=True)
            seed(home)
        with WorkspaceReader(home).read() as connection:
            counts = analytics.store_counts(connection)
        print(f"store: {', '.join(f'{v:,} {k}' for k, v in counts.items())}")
        print(f"\nquery times in ms over {options.repeat} runs: median / max with a fresh "
              "read-only connection each (as the pages read), median of the query alone")
        for name, (median, worst, alone) in query_times(home, options.repeat).items():
            print(f"  {name:62} {median:7.1f} / {worst:7.1f}   {alone or float('nan'):7.1f}")
        if not options.no_browser:
            print("\ntime to first render (ms; first visit, then median of later visits):")
            for name, times in page_render_times(home, options.visits).items():
                later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
                verdict = ""
                if name == RUN_TO_CHART:
                    met = statistics.median(times) <= RUN_TARGET_MS
                    verdict = (f"   median {statistics.median(times):6.0f} vs target "
                               f"<= {RUN_TARGET_MS}: {'met' if met else 'MISSED'}")
                print(f"  {name:16} first {times[0]:8.0f}   later {later:8.0f}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
