"""The intake benchmark, bounded: concurrent clients, 10% bad requests, nothing lost, no 5xx."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).parents[2] / "bench" / "ingest.py"


def test_bounded_ingest_run_loses_nothing_and_never_answers_5xx():
    spec = importlib.util.spec_from_file_location("bench_ingest", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up
    spec.loader.exec_module(bench)
    result = bench.run(events=1_000, clients=10, batch=20, invalid=0.10, baseline=20)
    assert result["problems"] == []
    statuses = result["statuses"]
    assert set(statuses["batch"]) == {202} and set(statuses["malformed"]) == {422}
    assert set(statuses["unsigned"]) == {401} and set(statuses["replay"]) == {409}
    assert result["accepted_events"] >= 850
    if result["store"] is not None:  # the spool loader put each accepted event in once
        assert result["store"]["distinct"] == result["accepted_events"] + 20
