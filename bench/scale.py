"""Benchmark: the engine at 1M, 5M and 10M contacts in bounded memory, against the raw floor.

`lead_welcome_v1` over 14 virtual days with pure flow logic (like `mawb simulate --responses
none`) on the embedded default: one store file. Each figure comes from its own child process
(so peak RSS is that run's alone), measured in the same run:

- engine: import the population in chunks of `--chunk` contacts (the generator's frame never
  holds the whole population), then tick on the virtual clock; wall time of the ticks
  (including the final checkpoint) and the process's peak RSS;
- raw floor: the same state transitions as hand-written statements (`bench/engine.py`), on
  the same chunked import.

DuckDB's memory is bounded by the store's deliberate limit (`MAWB_MEMORY_LIMIT`, set here by
`--memory-limit`) and spills to the temp folder next to the store. Targets: 10M x 14 days
<= 120 s and <= 8 GB peak RSS; engine <= 2x the raw floor at 1M and at 5M.

    python bench/scale.py [--sizes 1000000,5000000,10000000] [--memory-limit 5GB] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

FLOW_ID = "lead_welcome_v1"
DAYS = 14


def _import_chunked(workspace: Any, size: int, chunk: int, seed: int) -> None:
    """`size` synthetic contacts, generated and imported `chunk` at a time (unique ids)."""
    from mawb.data import synthetic_contacts

    for offset in range(0, size, chunk):
        part = synthetic_contacts(min(chunk, size - offset), seed=seed + offset)
        part["contact_id"] = [f"c{offset + i + 1:09d}" for i in range(len(part))]
        workspace.import_contacts(part)
        del part


def scenario(kind: str, size: int, chunk: int, seed: int) -> dict[str, Any]:
    from engine import _counts, _epoch, _raw_ticks

    from mawb.engine import Workspace
    from mawb.engine.store import connect
    from mawb.templates import load_template

    flow = load_template(FLOW_ID)
    with tempfile.TemporaryDirectory(prefix="mawb-scale-", dir=os.environ.get("SCALE_DIR")) \
            as home:
        workspace = Workspace(home)
        started = time.perf_counter()
        with workspace.session():
            _import_chunked(workspace, size, chunk, seed)
            workspace.deploy(flow)
        imported, cpu = time.perf_counter(), time.process_time()
        if kind == "engine":
            ticks = 0
            with workspace.session():
                now = _epoch()
                end = now + timedelta(days=DAYS)
                while now is not None and now <= end:
                    workspace.tick(flow, now)
                    ticks += 1
                    now = workspace.next_due(flow, now)
        else:
            connection = connect(workspace.store_path())
            _raw_ticks(connection, flow)
            connection.close()
            ticks = 3
        finished, cpu = time.perf_counter(), time.process_time() - cpu
        counts = _counts(workspace.store_path())
    return {"import_s": imported - started, "run_s": finished - imported, "cpu_s": cpu,
            "ticks": ticks,
            "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "counts": counts}


def measure(kind: str, size: int, chunk: int, seed: int, memory_limit: str) -> dict[str, Any]:
    environment = {**os.environ, "MAWB_MEMORY_LIMIT": memory_limit}
    os.sync()  # the last run's writeback is not this run's: its commits sync the WAL
    output = subprocess.run(
        [sys.executable, __file__, "--scenario", kind, "--size", str(size), "--chunk",
         str(chunk), "--seed", str(seed)],
        check=True, capture_output=True, text=True, env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000,10000000")
    parser.add_argument("--memory-limit", default="5GB")
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="50k and 100k (a smoke test)")
    parser.add_argument("--scenario", choices=["engine", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(scenario(args.scenario, args.size, args.chunk, args.seed), default=str))
        return
    sizes = [50_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    chunk = min(args.chunk, max(sizes))
    print(f"{os.cpu_count()} CPUs, load average {_load()} at start; DuckDB memory limit "
          f"{args.memory_limit}, one store file, import in chunks of {chunk:,}")
    rows = {}
    for size in sizes:
        engine = measure("engine", size, chunk, args.seed, args.memory_limit)
        print(f"engine {size:>11,}: {engine['run_s']:7.1f} s (CPU {engine['cpu_s']:.1f} s) for "
              f"{engine['ticks']} ticks (+{engine['import_s']:.1f} s import), peak RSS "
              f"{engine['rss_gb']:.2f} GB", flush=True)
        raw = None
        if size <= 5_000_000 or args.quick:
            raw = measure("raw", size, chunk, args.seed, args.memory_limit)
            assert raw["counts"] == engine["counts"], (raw["counts"], engine["counts"])
            print(f"raw    {size:>11,}: {raw['run_s']:7.1f} s (CPU {raw['cpu_s']:.1f} s), peak RSS "
                  f"{raw['rss_gb']:.2f} GB -> engine {engine['run_s'] / raw['run_s']:.2f}x the "
                  f"floor (CPU {engine['cpu_s'] / raw['cpu_s']:.2f}x)", flush=True)
        rows[size] = (engine, raw)
    print()
    for size, (engine, raw) in rows.items():
        if raw is not None:
            ratio = engine["run_s"] / raw["run_s"]
            print(f"(c) {size:,}: engine {ratio:.2f}x the raw floor. Target <= 2x: "
                  f"{'met' if ratio <= 2 else 'MISSED'}")
        if size >= 10_000_000:
            fits = engine["run_s"] <= 120 and engine["rss_gb"] <= 8
            print(f"(c) {size:,} x {DAYS} days: {engine['run_s']:.0f} s, peak RSS "
                  f"{engine['rss_gb']:.2f} GB. Target <= 120 s and <= 8 GB: "
                  f"{'met' if fits else 'MISSED'}")
    print(f"load average at the end: {_load()}")


def _load() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
