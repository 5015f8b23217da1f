"""Benchmark: synthetic data generation and intake throughput at simulation scale.

`mawb simulate --synthetic N` and the engine benchmarks build populations of up to a million
contacts, and the Data page validates uploads of that size, so both the generator and the intake
checks must stay vectorised. This script times, for each size: `synthetic_contacts`,
`synthetic_events` (21 days), `write_csv`, and `read_contacts` / `read_events` on those CSV files,
next to a baseline of plain `pandas.read_csv` on the same file (parsing without any validation), so
the cost of the checks themselves is visible.

    python bench/data.py [--sizes 10000 100000 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mawb import data, intake

if TYPE_CHECKING:
    from collections.abc import Callable


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def bench_size(n: int, seed: int, folder: Path) -> list[tuple[str, int, float]]:
    """(step, rows, seconds) for one population size."""
    contacts, contacts_seconds = timed(lambda: data.synthetic_contacts(n, seed=seed))
    events, events_seconds = timed(lambda: data.synthetic_events(contacts, seed=seed))
    contacts_csv, events_csv = folder / f"contacts_{n}.csv", folder / f"events_{n}.csv"
    _, write_seconds = timed(lambda: data.write_csv(contacts, contacts_csv))
    data.write_csv(events, events_csv)
    _, raw_seconds = timed(lambda: pd.read_csv(contacts_csv, dtype=str))
    _, read_seconds = timed(lambda: intake.read_contacts(contacts_csv))
    _, raw_events_seconds = timed(lambda: pd.read_csv(events_csv, dtype=str))
    _, read_events_seconds = timed(lambda: intake.read_events(events_csv))
    return [
        ("synthetic_contacts", n, contacts_seconds),
        ("synthetic_events (21 days)", len(events), events_seconds),
        ("write_csv contacts", n, write_seconds),
        ("pandas.read_csv contacts (baseline)", n, raw_seconds),
        ("intake.read_contacts csv", n, read_seconds),
        ("pandas.read_csv events (baseline)", len(events), raw_events_seconds),
        ("intake.read_events csv", len(events), read_events_seconds),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data.synthetic_contacts(100, seed=args.seed)  # warm imports and caches
    print(f"{'step':<38} {'rows':>10} {'seconds':>8} {'rows/s':>12}")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            for step, rows, seconds in bench_size(n, args.seed, Path(folder)):
                rate = rows / seconds if seconds > 0 else float("inf")
                print(f"{step:<38} {rows:>10,} {seconds:>8.2f} {rate:>12,.0f}")


if __name__ == "__main__":
    main()
