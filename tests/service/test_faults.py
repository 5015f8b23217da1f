"""Faults with real processes: SIGKILL mid-request, and a store held by another process."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import duckdb
import httpx
import pytest
from service_helpers import make_intake, spooled_events

from mawb.service.run import intake_process

pytestmark = pytest.mark.slow


def _sender(url: str, auth: dict, prefix: str, acked: list[str], sent: list[str],
            stop: threading.Event) -> None:
    """Send batches of 10 events until the service dies; record what was acknowledged."""
    with httpx.Client(base_url=url, timeout=5) as client:
        batch = 0
        while not stop.is_set():
            ids = [f"{prefix}-{batch}-{i}" for i in range(10)]
            sent.extend(ids)
            body = {"events": [{"contact_id": f"c{i}", "name": "page_view", "event_id": e}
                               for i, e in enumerate(ids)]}
            try:
                response = client.post("/v1/events", json=body, headers=auth)
            except httpx.HTTPError:
                return  # killed mid-request: not acknowledged
            assert response.status_code == 202, response.text
            acked.extend(ids)
            batch += 1


def test_sigkill_mid_requests_loses_nothing_acknowledged(tmp_path):
    intake = make_intake(tmp_path)
    rng = random.Random(10)
    acked: list[str] = []
    sent: list[str] = []
    for round_ in range(3):
        with intake_process(intake.home, env=intake.env) as (url, process):
            tmp = intake.home / "spool" / ".tmp"  # the restarted writer cleared what a killed
            assert not tmp.exists() or list(tmp.iterdir()) == []  # one left there
            stop = threading.Event()
            threads = [threading.Thread(target=_sender, args=(
                url, intake.auth, f"r{round_}t{t}", acked, sent, stop)) for t in range(6)]
            for thread in threads:
                thread.start()
            already = len(acked)
            deadline = time.monotonic() + 20
            while len(acked) == already and time.monotonic() < deadline:
                time.sleep(0.01)  # kill at a random point once requests are flowing
            time.sleep(rng.uniform(0.05, 0.8))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
        events = spooled_events(intake.home)  # parses every line (no torn file) and no repeats
        assert set(acked) <= set(events), f"round {round_}: acknowledged events lost"
        assert set(events) <= set(sent)
    assert len(acked) > 100, "the service was killed before it acknowledged anything"
    entries = {path.name for path in (intake.home / "spool").iterdir()}
    assert all(name.endswith(".jsonl") for name in entries - {".tmp"})


def test_intake_answers_while_another_process_holds_the_store(service, intake):
    store = intake.home / "store.duckdb"
    duckdb.connect(str(store)).close()
    holder = subprocess.Popen(  # a dashboard reader holding the file for seconds
        [sys.executable, "-c", "import duckdb, sys, time\n"
         "c = duckdb.connect(sys.argv[1], read_only=True)\n"
         "print('held', flush=True)\ntime.sleep(8)", str(store)],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(duckdb.IOException):  # the store really is unavailable for writing
            duckdb.connect(str(store))
        started = time.perf_counter()
        for i in range(5):
            response = httpx.post(f"{service}/v1/events", headers=intake.auth, json={
                "contact_id": "c1", "name": "page_view", "event_id": f"while-held-{i}"},
                timeout=5)
            assert response.status_code == 202
        assert time.perf_counter() - started < 2.0
        assert holder.poll() is None, "the holder should still hold the store"
        assert {f"while-held-{i}" for i in range(5)} <= set(spooled_events(intake.home))
    finally:
        holder.kill()
        holder.wait()
