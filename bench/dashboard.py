"""Benchmark: dashboard queries on a demo store, and first render of the analyst pages.

Three sets of numbers:

- query times: every query the Monitor and Data pages run (mawb.analytics), on a store holding
  the demo set (3,000 contacts and their events) and simulated runs of two flows, each timed
  with a fresh read-only connection like the pages use (median and max of `--repeat` runs),
  plus the whole monitor snapshot including opening the connection;
- time to first render of Templates, Monitor, Experiments and Data in Debian chromium driven
  by Playwright against `streamlit run app.py`: from clicking the page in the sidebar until
  the page's content is on screen (canvases drawn, charts plotted) and Streamlit is idle. The
  first visit of each page (cold: imports, first component load) and the median of later
  visits are reported;
- on Experiments, click "Run simulation" -> that run's chart on screen and Streamlit idle
  (target <= 2 s on the demo workspace), each run with a new seed so its result is told apart
  from the last one, which stays on the page meanwhile. Beside it, the same simulation called
  directly in this process: what the page adds on top of the simulation is the difference.
  The server's CPU seconds and the load average come with each figure (the machine is shared).

    python bench/dashboard.py [--home DIR] [--repeat 20] [--visits 3] [--runs 5]
                              [--pages Experiments ...] [--no-browser]

A `--home` without a store (or a temporary folder when none is given) is first seeded with the
demo-like store (a few minutes on a busy machine; the simulations are not timed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

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


@dataclass(frozen=True)
class Sample:
    """One timed browser action, with what the machine was doing meanwhile."""

    ms: float
    server_cpu: float  # CPU seconds of the Streamlit server (all its threads)
    browser_cpu: float  # CPU seconds of chromium's processes
    load: float  # 1-minute load average when it ended


class Meter:
    """Wall time, the server's and the browser's CPU time, and the load, around one action."""

    def __init__(self) -> None:
        children = psutil.Process().children(recursive=True)
        self.server = [p for p in children if "streamlit" in " ".join(_cmdline(p))]
        self.browser = [p for p in children if "chrom" in p.name().lower()]

    def measure(self, action: Callable[[], float | None]) -> Sample:
        """Run `action`; it returns its own milliseconds, or None to be timed whole."""
        server, browser = _cpu(self.server), _cpu(self.browser)
        started = time.perf_counter()
        ms = action()
        if ms is None:
            ms = (time.perf_counter() - started) * 1000
        return Sample(ms, _cpu(self.server) - server, _cpu(self.browser) - browser,
                      os.getloadavg()[0])


def _cmdline(process: psutil.Process) -> list[str]:
    with contextlib.suppress(psutil.Error):
        return process.cmdline()
    return []


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):  # a renderer may have gone meanwhile
            times = process.cpu_times()
            total += times.user + times.system
    return total


def page_render_times(home: Path, visits: int, pages: list[str],
                      runs: int) -> dict[str, list[Sample]]:
    """Every page in `pages` visited `visits` times in turn, then `runs` Experiments runs."""
    from playwright.sync_api import sync_playwright

    if chromium_path() is None:
        raise SystemExit("Debian chromium is needed for the browser numbers (--no-browser)")
    results: dict[str, list[Sample]] = {name: [] for name in pages}
    with serve_streamlit(REPO / "app.py", cwd=REPO, home=home, timeout=120) as url:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.goto(url)
            page.get_by_test_id("stSidebarNav").wait_for(timeout=TIMEOUT_MS)
            page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
            meter = Meter()
            for _ in range(visits):
                for name in pages:
                    results[name].append(meter.measure(
                        lambda name=name: _visit(page, name, PAGES[name])))
            results[RUN_TO_CHART] = [_run_to_chart(page, meter, seed)
                                     for seed in range(1, runs + 1)]
            browser.close()
    return results


RUN_TO_CHART = "Experiments run"  # click "Run simulation" -> its chart drawn, Streamlit idle
RUN_TARGET_MS = 2000
POLL_MS = 20
RUN_FLOW = "lead_welcome_v1"  # the page's default flow, on its default population (demo data)
PLOTS = "[...document.querySelectorAll('.js-plotly-plot')].filter(e => e.offsetParent)"
RUN_DONE = f"""([label, before]) => !document.querySelector('[data-testid="stStatusWidget"]')
  && [...document.querySelectorAll('[data-testid="stMarkdownContainer"]')]
       .some(e => e.textContent.includes(label))
  && JSON.stringify({PLOTS}.map(e => e.data)) !== before
  && {PLOTS}.length >= 2"""
"""The run labelled `label` is drawn: its label shown, both charts visible and redrawn with
data other than the last run's (`before`), and Streamlit idle."""


def _run_to_chart(page: Any, meter: Meter, seed: int) -> Sample:
    """From clicking "Run simulation" on the Experiments page (its defaults: the demo
    population, the flow's days) with `seed` until that run's charts are drawn and Streamlit
    is idle. Checked every POLL_MS: Playwright's locator waits poll ever more slowly (up to
    every 500 ms), which would round the figure up, and polling on every animation frame
    keeps chromium drawing frames (CPU taken from the server on a small machine)."""
    if not page.url.endswith("/Experiments"):
        _visit(page, "Experiments", PAGES["Experiments"])
    box = page.get_by_role("spinbutton", name="Seed")
    box.fill(str(seed))
    box.press("Enter")
    page.wait_for_timeout(300)  # the rerun that takes the seed (not timed)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    before = page.evaluate(f"() => JSON.stringify({PLOTS}.map(e => e.data))")
    button = page.locator("button:has-text('Run simulation')").first

    def run() -> None:
        button.click()
        page.wait_for_function(RUN_DONE, arg=[f"· seed {seed} ·", before], polling=POLL_MS,
                               timeout=TIMEOUT_MS)

    sample = meter.measure(run)
    page.wait_for_timeout(300)
    return sample


def simulation_times(seeds: int) -> list[tuple[float, float]]:
    """Wall ms and CPU s of the simulation the page runs, called directly, once per seed (after
    one untimed run that pays the imports, as the server has by its second run)."""
    from mawb.ui import experiment_runs as runs

    flow = mawb.load_template(RUN_FLOW)
    population = runs.builtin_population("demo")

    def run(seed: int) -> None:
        runs.run_variant(flow, population, params=dict(flow.params),
                         days=runs.default_days(flow), seed=seed)

    run(0)
    times = []
    for seed in range(1, seeds + 1):
        started, cpu = time.perf_counter(), time.process_time()
        run(seed)
        times.append(((time.perf_counter() - started) * 1000, time.process_time() - cpu))
    return times


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
    parser.add_argument("--runs", type=int, default=5, help="Experiments runs (click -> chart)")
    parser.add_argument("--pages", nargs="*", choices=list(PAGES), default=list(PAGES),
                        help="pages to visit before the Experiments runs (default: all)")
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
            report_browser(page_render_times(home, options.visits, options.pages,
                                             options.runs))
    return 0


def report_browser(results: dict[str, list[Sample]]) -> None:
    runs = results.pop(RUN_TO_CHART)
    print("\ntime to first render (ms; first visit, then median of later visits; server CPU "
          "s, load average at the end):")
    for name, samples in results.items():
        later = [s.ms for s in samples[1:]]
        print(f"  {name:12} first {samples[0].ms:7.0f}   later "
              f"{statistics.median(later) if later else float('nan'):7.0f}   "
              f"server CPU {sum(s.server_cpu for s in samples):5.1f} s   "
              f"load {samples[-1].load:.2f}")
    print(f"\nExperiments: click 'Run simulation' -> that run's charts drawn ({RUN_FLOW}, "
          "demo data, its default days; one seed per run):")
    for number, sample in enumerate(runs, 1):
        print(f"  run {number}: {sample.ms:6.0f} ms   server CPU {sample.server_cpu:4.2f} s   "
              f"browser CPU {sample.browser_cpu:4.2f} s   load {sample.load:.2f}")
    later = [s.ms for s in runs[1:]] or [runs[0].ms]  # the first run pays the server's imports
    median, worst = statistics.median(later), max(later)
    verdict = "met" if median <= RUN_TARGET_MS else "MISSED"
    print(f"  runs 2..{len(runs)}: p50 {median:6.0f} ms, max {worst:6.0f} ms   vs target "
          f"<= {RUN_TARGET_MS} ms: {verdict}")
    alone = simulation_times(len(later))
    wall = statistics.median(ms for ms, _ in alone)
    cpu = statistics.median(cpu for _, cpu in alone)
    print(f"  the simulation alone, in this process: p50 {wall:6.0f} ms wall, {cpu:4.2f} s CPU "
          f"(load {os.getloadavg()[0]:.2f})")
    print(f"  the page adds p50 {median - wall:6.0f} ms: click -> chart = "
          f"{median / wall:.2f}x the simulation alone")


if __name__ == "__main__":
    raise SystemExit(main())
