"""Benchmark: event intake over HTTP with durable acknowledgements, under concurrent clients.

The intake service (`python -m mawb.service.run`, the app `mawb serve` runs) starts in its own
process on a loopback port. 50 concurrent HTTP clients send 100k events, batched 20 per request
as SDKs send them, plus signed webhook calls; 10% of the events are bad on purpose: batches
with one malformed event, unsigned webhook calls, and replays of webhook calls already
accepted. Meanwhile a reader process polls the workspace's store with short read-only
connections, as the dashboards do (the service never opens the store, so it never waits).

Required (exit 1 otherwise): every valid event exactly once in the spool (and, with the
spool loader, exactly once in the store), every bad request refused with a 4xx, no 5xx.
Reported: accepted events/s, p50/p99 request latency, peak RSS of the service, request shape.
Targets on a 2-core machine: >= 5,000 accepted events/s and p99 <= 50 ms.

Baseline, measured in the same run: the same kind of valid events sent one per request (a
naive client) for `--baseline` events; the ratio shows what batching buys with durable acks.

    python bench/ingest.py [--events 100000] [--clients 50] [--batch 20] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from mawb.channels.webhooks import new_secret, sign_headers
from mawb.service.keys import create_key
from mawb.service.run import intake_process
from mawb.templates import load_template

if TYPE_CHECKING:
    from collections.abc import Callable

SECRET_ENV = "MAWB_BENCH_HOOK_SECRET"
HOOK = "/hooks/webinar/registered"


@dataclass
class Tally:
    """What the clients saw, by request kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    accepted_ids: list[str] = field(default_factory=list)
    refused_ids: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        counts = self.statuses.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1


def _workspace(home: Path) -> tuple[str, str]:
    """A key with no practical rate limit and flow `webinar` with a signed webhook node."""
    _, key = create_key(home, "bench", rate=1e6)
    document = load_template("webinar_reminders_v1").to_dict()
    document.update(id="webinar", version=1)
    for node in document["nodes"]:
        if node["type"] == "webhook_trigger":
            node["params"]["secret"] = f"env:{SECRET_ENV}"
    (home / "flows" / "webinar").mkdir(parents=True)
    (home / "flows" / "webinar" / "v1.json").write_text(json.dumps(document))
    return key, new_secret()


def _plan(events: int, batch: int, invalid: float, seed: int) -> list[tuple[str, int]]:
    """The request mix: (kind, events in it). Of the bad events, 3/5 come in malformed batches
    (`batch` events, one broken: the whole batch is refused), 1/5 as unsigned webhook calls
    and 1/5 as replays (1 event each); a replay follows an accepted signed call, which counts
    as a valid event."""
    bad = round(events * invalid)
    malformed = bad * 3 // 5 // batch
    unsigned = bad // 5
    replays = bad - malformed * batch - unsigned
    signed = replays
    valid_batches = max(0, (events - bad - signed) // batch)
    plan = ([("batch", batch)] * valid_batches + [("malformed", batch)] * malformed
            + [("unsigned", 1)] * unsigned + [("signed+replay", 1)] * signed)
    random.Random(seed).shuffle(plan)
    return plan


def _events(batch: int, prefix: str) -> list[dict[str, Any]]:
    return [{"contact_id": f"c{random.randrange(50_000)}", "name": "page_view",
             "event_id": f"{prefix}-{i}", "properties": {"page": "/pricing", "ms": i}}
            for i in range(batch)]


@dataclass(frozen=True)
class Call:
    """One prepared request: built before the clock starts, so the clients measure the service
    and not their own JSON encoding."""

    kind: str
    path: str
    body: bytes
    headers: dict[str, str]
    ids: tuple[str, ...]
    expect: int
    replay: bool = False  # send it again after a 202: the replay must be refused (409)


def _prepare(kind: str, size: int, key: str, secret: str) -> Call:
    prefix = uuid.uuid4().hex
    if kind in {"batch", "malformed", "single"}:
        events = _events(size, prefix)
        if kind == "malformed":
            events[size // 2]["contact_id"] = ""
        body = {"events": events} if kind != "single" else events[0]
        return Call(kind, "/v1/events", json.dumps(body).encode(),
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    tuple(e["event_id"] for e in events), 422 if kind == "malformed" else 202)
    data = json.dumps({"contact_id": f"c{random.randrange(50_000)}", "seat": "A1"}).encode()
    headers = {"Content-Type": "application/json"}
    if kind == "unsigned":
        return Call(kind, HOOK, data, headers, (), 401)
    headers.update(sign_headers(secret, f"msg_{prefix}", data))
    return Call("signed", HOOK, data, headers, (f"webinar:registered:msg_{prefix}",), 202,
                replay=True)


async def _send(client: httpx.AsyncClient, call: Call, tally: Tally) -> None:
    status = await _timed(client, call.kind, call.path, tally, content=call.body,
                          headers=call.headers)
    if call.ids:
        (tally.accepted_ids if status == 202 else tally.refused_ids).extend(call.ids)
    _expect(tally, call.kind, status, {call.expect})
    if call.replay and status == 202:
        replay = await _timed(client, "replay", call.path, tally, content=call.body,
                              headers=call.headers)
        _expect(tally, "replay", replay, {409})


async def _timed(client: httpx.AsyncClient, kind: str, path: str, tally: Tally,
                 **request: Any) -> int:
    started = time.perf_counter()
    response = await client.post(path, **request)
    tally.record(kind, response.status_code, time.perf_counter() - started)
    return response.status_code


def _expect(tally: Tally, kind: str, status: int, expected: set[int]) -> None:
    if status not in expected:
        tally.unexpected.append(f"{kind}: {status}")


async def _drive(url: str, calls: list[Call], clients: int, tally: Tally,
                 start: Callable[[], None]) -> None:
    """Open every client and its connection first (building an HTTP client costs tens of
    milliseconds of CPU, which would stall the requests already in flight), then wait for the
    common start and send."""
    queue: asyncio.Queue[Call] = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)
    # One client, one keep-alive connection each: 50 clients are 50 connections (one shared
    # pool of 50 costs the client process twice the CPU per request).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    sessions = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits)
                for _ in range(clients)]
    await asyncio.gather(*(session.get("/health") for session in sessions))
    await asyncio.get_running_loop().run_in_executor(None, start)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await _send(client, queue.get_nowait(), tally)

    try:
        await asyncio.gather(*(worker(session) for session in sessions))
    finally:
        await asyncio.gather(*(session.aclose() for session in sessions))


def _client_process(url: str, plan: list[tuple[str, int]], clients: int, key: str,
                    secret: str, seed: int, start: Any, results: Any) -> None:
    """One client process: prepare its calls, wait for the common start, send, report."""
    random.seed(seed)
    calls = [_prepare(kind, size, key, secret) for kind, size in plan]
    tally = Tally()
    cpu = [0.0]

    def started() -> None:
        start.wait()
        cpu[0] = time.process_time()

    asyncio.run(_drive(url, calls, clients, tally, started))
    results.put((tally, time.process_time() - cpu[0]))


def _drive_processes(url: str, plan: list[tuple[str, int]], clients: int, processes: int,
                     key: str, secret: str) -> tuple[Tally, float, float]:
    """Run the plan over `clients` clients spread across `processes` client processes (one
    Python process cannot drive 50 HTTP clients on a shared machine without becoming the
    bottleneck); return the merged tally, wall seconds and client CPU seconds."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(processes + 1), context.Queue()
    workers = [context.Process(target=_client_process, args=(
        url, plan[i::processes], max(1, clients // processes), key, secret, i, start, results))
        for i in range(processes)]
    for worker in workers:
        worker.start()
    start.wait()
    started = time.perf_counter()
    merged, cpu = Tally(), 0.0
    for _ in workers:
        tally, seconds = results.get()
        cpu += seconds
        for kind, values in tally.latencies.items():
            merged.latencies.setdefault(kind, []).extend(values)
        for kind, counts in tally.statuses.items():
            for status, n in counts.items():
                merged.statuses.setdefault(kind, {})[status] = merged.statuses.get(
                    kind, {}).get(status, 0) + n
        merged.accepted_ids += tally.accepted_ids
        merged.refused_ids += tally.refused_ids
        merged.unexpected += tally.unexpected
    wall = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return merged, wall, cpu


def _reader(store: Path, stop: threading.Event) -> dict[str, Any]:
    """Poll the store from another process (short read-only connections) until stopped."""
    code = ("import duckdb, sys, time\n"
            "n = 0\n"
            "while True:\n"
            "    c = duckdb.connect(sys.argv[1], read_only=True)\n"
            "    c.execute('SELECT count(*) FROM events').fetchone()\n"
            "    c.close(); n += 1\n"
            "    print(n, flush=True); time.sleep(0.2)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(store)],
                               stdout=subprocess.PIPE, text=True)
    stop.wait()
    process.terminate()
    output = process.communicate(timeout=10)[0].split()
    return {"polls": int(output[-1]) if output else 0}


def _sample_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss / 2**20)
        except psutil.Error:
            return
        stop.wait(0.1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (load-independent cost of the work)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _spool_ids(home: Path) -> list[str]:
    ids = []
    for path in sorted((home / "spool").glob("*.jsonl")):
        ids += [json.loads(line)["event_id"] for line in path.read_text().splitlines()]
    return ids


def _percentile(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


def _load_into_store(home: Path) -> dict[str, Any] | None:
    """Load the spool with the service's loader, when this checkout has it."""
    try:
        from mawb.engine import spool as loader
    except ImportError:
        return None
    from mawb.engine.workspace import Workspace

    started = time.perf_counter()
    report = loader.load(Workspace(home))
    seconds = time.perf_counter() - started
    import duckdb

    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as connection:
        stored = [row[0] for row in connection.execute("SELECT event_id FROM events").fetchall()]
    return {"seconds": round(seconds, 2), "events": report.events, "stored_ids": stored}


def run(events: int, clients: int, batch: int, invalid: float, baseline: int,
        seed: int = 0, processes: int = 2) -> dict[str, Any]:
    random.seed(seed)
    with tempfile.TemporaryDirectory(prefix="mawb-ingest-") as folder:
        home = Path(folder)
        key, secret = _workspace(home)
        from mawb.engine.workspace import Workspace

        with Workspace(home).connection():  # the store the dashboard reader polls
            pass
        plan = _plan(events, batch, invalid, seed)
        with intake_process(home, env={SECRET_ENV: secret}) as (url, process):
            stop = threading.Event()
            peak = [0.0]
            sampler = threading.Thread(target=_sample_rss, args=(process.pid, stop, peak))
            reader_result: dict[str, Any] = {}
            reader = threading.Thread(target=lambda: reader_result.update(
                _reader(home / "store.duckdb", stop)))
            sampler.start()
            reader.start()
            base_tally, base_seconds, _ = _drive_processes(
                url, [("single", 1)] * baseline, clients, processes, key, secret)
            service_cpu = _cpu_seconds(process.pid)
            tally, seconds, client_cpu = _drive_processes(url, plan, clients, processes, key,
                                                          secret)
            cpu = {"service": _cpu_seconds(process.pid) - service_cpu, "clients": client_cpu}
            stop.set()
            sampler.join()
            reader.join()
        spooled = _spool_ids(home)
        stored = _load_into_store(home)
    result = _summary(events, clients, batch, plan, tally, seconds, base_tally, base_seconds,
                      peak[0], reader_result, spooled, stored)
    result["shape"]["client_processes"] = processes
    result["cpu"] = {
        "service_cores_used": round(cpu["service"] / seconds, 2),
        "client_cores_used": round(cpu["clients"] / seconds, 2),
        "service_ms_per_request": round(
            cpu["service"] / sum(map(len, tally.latencies.values())) * 1000, 2),
        "accepted_events_per_service_cpu_second": round(
            result["accepted_events"] / cpu["service"]) if cpu["service"] else None}
    return result


def _summary(events: int, clients: int, batch: int, plan: list[tuple[str, int]], tally: Tally,
             seconds: float, base: Tally, base_seconds: float, rss: float,
             reader: dict[str, Any], spooled: list[str],
             stored: dict[str, Any] | None) -> dict[str, Any]:
    accepted = set(tally.accepted_ids) | set(base.accepted_ids)
    refused = set(tally.refused_ids)
    problems = list(tally.unexpected + base.unexpected)
    if len(spooled) != len(set(spooled)):
        problems.append(f"{len(spooled) - len(set(spooled))} events spooled twice")
    if missing := accepted - set(spooled):
        problems.append(f"{len(missing)} acknowledged events missing from the spool")
    if leaked := refused & set(spooled):
        problems.append(f"{len(leaked)} refused events in the spool")
    five = sum(n for kinds in (tally.statuses, base.statuses) for counts in kinds.values()
               for status, n in counts.items() if status >= 500)
    if five:
        problems.append(f"{five} responses were 5xx")
    store_figures = None
    if stored is not None:
        ids = stored.pop("stored_ids")
        if len(ids) != len(set(ids)) or set(ids) != accepted:
            problems.append(f"store holds {len(ids)} events ({len(set(ids))} distinct) for "
                            f"{len(accepted)} accepted")
        store_figures = {**stored, "distinct": len(set(ids))}
    valid_events = len(tally.accepted_ids)
    latencies = [s for kind, values in tally.latencies.items() for s in values]
    batch_latency = tally.latencies.get("batch", [])
    base_rate = len(base.accepted_ids) / base_seconds if base_seconds else 0.0
    rate = valid_events / seconds
    return {
        "shape": {"events": events, "clients": clients, "batch": batch,
                  "requests": {kind: sum(1 for k, _ in plan if k == kind)
                               for kind in dict.fromkeys(k for k, _ in plan)}},
        "seconds": round(seconds, 2),
        "accepted_events": valid_events,
        "accepted_events_per_s": round(rate),
        "requests_per_s": round(len(latencies) / seconds),
        "latency_ms": {"p50": round(_percentile(latencies, 50), 1),
                       "p99": round(_percentile(latencies, 99), 1),
                       "batch_p50": round(_percentile(batch_latency, 50), 1),
                       "batch_p99": round(_percentile(batch_latency, 99), 1)},
        "statuses": {k: dict(sorted(v.items())) for k, v in tally.statuses.items()},
        "service_peak_rss_mb": round(rss),
        "reader_polls": reader.get("polls", 0),
        "baseline_one_event_per_request": {"events": len(base.accepted_ids),
                                           "events_per_s": round(base_rate),
                                           "p99_ms": round(_percentile(
                                               base.latencies.get("single", []), 99), 1)},
        "batched_vs_baseline": round(rate / base_rate, 1) if base_rate else None,
        "store": store_figures,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "problems": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--invalid", type=float, default=0.10)
    parser.add_argument("--baseline", type=int, default=5_000)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--quick", action="store_true", help="5k events: a smoke run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.baseline = 5_000, 500
    result = run(args.events, args.clients, args.batch, args.invalid, args.baseline,
                 processes=args.processes)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    if result["problems"]:
        sys.exit(1)


def _print(result: dict[str, Any]) -> None:
    shape, latency = result["shape"], result["latency_ms"]
    print(f"ingest: {shape['events']} events, {shape['clients']} clients in "
          f"{shape['client_processes']} processes, {shape['batch']} "
          f"events per batch request; requests {shape['requests']}")
    print(f"  accepted {result['accepted_events']} events in {result['seconds']} s = "
          f"{result['accepted_events_per_s']} events/s ({result['requests_per_s']} requests/s)"
          f"  [target >= 5000]")
    print(f"  latency p50 {latency['p50']} ms, p99 {latency['p99']} ms (batch requests: p50 "
          f"{latency['batch_p50']}, p99 {latency['batch_p99']})  [target p99 <= 50]")
    base = result["baseline_one_event_per_request"]
    print(f"  baseline one event per request: {base['events_per_s']} events/s, p99 "
          f"{base['p99_ms']} ms; batched is {result['batched_vs_baseline']}x")
    cpu = result["cpu"]
    print(f"  service used {cpu['service_cores_used']} cores ({cpu['service_ms_per_request']} ms "
          f"CPU per request, {cpu['accepted_events_per_service_cpu_second']} accepted events "
          f"per service CPU-second); clients used {cpu['client_cores_used']} cores")
    print(f"  service peak RSS {result['service_peak_rss_mb']} MB; store reader polled "
          f"{result['reader_polls']} times; statuses {result['statuses']}")
    if result["store"] is not None:
        print(f"  spool loaded into the store in {result['store']['seconds']} s: "
              f"{result['store']['distinct']} distinct events")
    print(f"  load average {result['load_average']}")
    print("  OK: every valid event exactly once, every bad request a 4xx, no 5xx"
          if not result["problems"] else f"  PROBLEMS: {result['problems']}")


if __name__ == "__main__":
    main()
