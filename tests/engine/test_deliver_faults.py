"""Delivery under faults, with real servers and real processes (bounded in count and time).

SMTP down then up; HTTP 429 with Retry-After, persistent 500s, 4xx, timeouts; SIGKILL of a
dispatcher process while a claimed batch is being accepted by the receivers, repeated at random
points: nothing is lost, every row ends sent, and the receivers saw duplicates only of keys in
flight at a kill (an HTTP receiver deduping by Idempotency-Key applied each exactly once). And
while a dispatch of a few thousand messages runs, another process reads the store between
batches.
"""

from __future__ import annotations

import collections
import email
import multiprocessing
import os
import random
import signal
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pytest
from delivery_helpers import (
    SMTP_PASSWORD,
    Answer,
    HttpServer,
    Received,
    SmtpServer,
    leads,
    outbox,
    self_signed,
    smtp_settings,
    webhook_connection,
    workspace_with,
)

from mawb.engine.deliver import deliver
from mawb.engine.outbox import MAX_ATTEMPTS
from mawb.engine.runner import status
from mawb.engine.workspace import Workspace
from mawb.model import Flow

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow
T0 = datetime(2026, 11, 2, 9, 0)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def mail_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_PASSWORD", SMTP_PASSWORD)


def _hook_flow(url: str, with_mail: bool = False) -> Flow:
    flow = (Flow.new("faults").add("start", "manual_trigger")
            .add("hook", "webhook_call", url=url, event="lead.new", include=["email"])
            .connect("start", "hook"))
    flow.settings.connections = {"webhook": "hooks"}
    if with_mail:
        flow.add("mail", "email_send", subject="Hi {{ first_name }}", body="Hello").connect(
            "hook", "mail")
        flow.settings.connections["email"] = "mail"
    return flow


def _queued(workspace: Workspace, flow: Flow, count: int) -> None:
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", [f"c{i:05d}" for i in range(count)], T0)
    workspace.tick(flow, T0)


@pytest.fixture
def http() -> Iterator[HttpServer]:
    server = HttpServer().start()
    yield server
    server.stop()


def test_smtp_down_then_up(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    server = SmtpServer(*tls_files)  # its port is reserved but nothing listens yet
    workspace = workspace_with(tmp_path, leads(3), {"mail": smtp_settings(server, tls_files[0])})
    flow = Flow.new("down").add("start", "manual_trigger").add(
        "mail", "email_send", subject="Hi", body="Hello").connect("start", "mail")
    flow.settings.connections = {"email": "mail"}
    _queued(workspace, flow, 3)

    report = deliver(workspace, now=T0)
    assert (report.sent, report.retried, report.dead) == (0, 3, 0)
    rows = outbox(workspace, flow.id)
    assert set(rows["status"]) == {"queued"} and set(rows["reason"]) == {"retry"}
    assert rows["error"].str.contains("connection refused").all()
    assert (rows["not_before"] > T0).all()
    assert deliver(workspace, now=T0).claimed == 0  # backing off

    server.start()
    try:
        assert deliver(workspace, now=T0 + timedelta(hours=1)).sent == 3
        ids = [email.message_from_bytes(raw)["Message-ID"] for _, _, raw in
               server.mailbox.messages]
        assert len(ids) == len(set(ids)) == 3
        assert set(outbox(workspace, flow.id)["attempts"]) == {2}
    finally:
        server.stop()


def test_429_retry_after_is_honoured(tmp_path: Path, http: HttpServer) -> None:
    seen: collections.Counter[str] = collections.Counter()

    def answer(received: Received) -> Answer:
        seen[received.headers["idempotency-key"]] += 1
        if seen[received.headers["idempotency-key"]] == 1:
            return Answer(429, b"{}", {"Retry-After": "120"})
        return Answer(204, b"")

    http.answer = answer
    workspace = workspace_with(tmp_path, leads(2), {"hooks": webhook_connection()})
    flow = _hook_flow(f"{http.url}/in")
    _queued(workspace, flow, 2)
    assert deliver(workspace, now=T0).retried == 2
    assert set(outbox(workspace, flow.id)["not_before"]) == {T0 + timedelta(seconds=120)}
    assert deliver(workspace, now=T0 + timedelta(seconds=119)).claimed == 0
    assert deliver(workspace, now=T0 + timedelta(seconds=120)).sent == 2
    assert set(seen.values()) == {2}


def test_500s_dead_letter_after_max_attempts_and_4xx_at_once(tmp_path: Path,
                                                            http: HttpServer) -> None:
    http.answer = lambda received: Answer(
        400 if received.path == "/bad" else 500, b'{"error": "boom"}')
    workspace = workspace_with(tmp_path, leads(2), {"hooks": webhook_connection()})
    flow = _hook_flow(f"{http.url}/flaky")
    flow.add("bad", "webhook_call", url=f"{http.url}/bad", event="x", include=[]).connect(
        "hook", "bad")
    _queued(workspace, flow, 2)
    for attempt in range(MAX_ATTEMPTS + 2):  # backoff is at most 9 h (6 h cap x 1.5 jitter)
        deliver(workspace, now=T0 + timedelta(hours=10 * attempt))
    rows = outbox(workspace, flow.id).set_index("node_id")
    assert set(rows["status"]) == {"dead"}
    assert set(rows.loc["hook", "reason"]) == {"max_attempts"}
    assert set(rows.loc["hook", "attempts"]) == {MAX_ATTEMPTS}
    assert set(rows.loc["bad", "reason"]) == {"rejected"}
    assert set(rows.loc["bad", "attempts"]) == {1}
    assert rows.loc["hook", "error"].str.startswith("webhook: HTTP 500").all()
    paths = collections.Counter(r.path for r in http.requests)
    assert paths == {"/flaky": 2 * MAX_ATTEMPTS, "/bad": 2}
    assert status(workspace, flow)["reasons"] == {"dead:max_attempts": 2, "dead:rejected": 2}


def test_timeouts_are_retried(tmp_path: Path, http: HttpServer) -> None:
    slow = {"delay": 1.5}
    http.answer = lambda received: Answer(200, b"{}", delay=slow["delay"])
    workspace = workspace_with(tmp_path, leads(1), {"hooks": webhook_connection(
        timeout_seconds=0.3)})
    flow = _hook_flow(f"{http.url}/slow")
    _queued(workspace, flow, 1)
    report = deliver(workspace, now=T0)
    assert report.retried == 1
    assert "timeout" in outbox(workspace, flow.id)["error"][0]
    slow["delay"] = 0.0
    assert deliver(workspace, now=T0 + timedelta(hours=1)).sent == 1


class _DedupingReceiver:
    """An HTTP receiver that applies each Idempotency-Key once and counts raw deliveries."""

    def __init__(self) -> None:
        self.deliveries: collections.Counter[str] = collections.Counter()
        self.applied: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, received: Received) -> Answer:
        key = received.headers["idempotency-key"]
        with self.lock:
            self.deliveries[key] += 1
            self.applied.add(key)  # a replayed key changes nothing
        return Answer(200, b"{}", delay=0.002)


def _deliver_in_child(home: str, batch: int, lease: float) -> None:
    report = deliver(Workspace(home), batch_size=batch, lease=timedelta(seconds=lease))
    os._exit(0 if report.claimed else 3)


def _dispatcher(home: Path, batch: int, lease: float) -> multiprocessing.process.BaseProcess:
    """A dispatcher in its own process, forked from this warm one (imports take seconds
    here); the test SIGKILLs it or lets it run to the end."""
    process = multiprocessing.get_context("fork").Process(
        target=_deliver_in_child, args=(str(home), batch, lease), daemon=True)
    process.start()
    return process


def test_sigkill_between_acceptance_and_recording(tmp_path: Path,
                                                  tls_files: tuple[Path, Path]) -> None:
    count, lease, rng = 60, 1.0, random.Random(7)
    receiver = _DedupingReceiver()
    http = HttpServer(receiver).start()
    smtp = SmtpServer(*tls_files).start()
    try:
        workspace = workspace_with(tmp_path, leads(count), {
            "hooks": webhook_connection(), "mail": smtp_settings(smtp, tls_files[0])})
        flow = _hook_flow(f"{http.url}/in", with_mail=True)
        _queued(workspace, flow, count)
        in_flight: set[str] = set()
        for _ in range(3):
            received = len(http.requests) + len(smtp.mailbox.messages)
            target = received + rng.randint(3, 30)
            process = _dispatcher(tmp_path, 20, lease)
            deadline = time.monotonic() + 60
            while (len(http.requests) + len(smtp.mailbox.messages) < target
                   and process.is_alive() and time.monotonic() < deadline):
                time.sleep(0.001)
            process.kill()  # SIGKILL
            process.join(timeout=30)
            assert process.exitcode == -signal.SIGKILL
            rows = outbox(workspace, flow.id)
            in_flight |= set(rows.loc[rows["status"] == "sending", "idempotency_key"])
            time.sleep(lease + 0.2)  # their leases expire: the next dispatcher re-claims them
        final = _dispatcher(tmp_path, 20, lease)
        final.join(timeout=120)
        assert final.exitcode == 0
    finally:
        http.stop()
        smtp.stop()
    rows = outbox(workspace, flow.id)
    assert set(rows["status"]) == {"sent"}, rows["status"].value_counts()
    assert len(rows) == 2 * count
    assert len(receiver.applied) == count  # nothing lost, each applied once
    replayed = {key for key, seen in receiver.deliveries.items() if seen > 1}
    assert replayed <= in_flight, replayed - in_flight
    mail_ids = collections.Counter(email.message_from_bytes(raw)["Message-ID"]
                                   for _, _, raw in smtp.mailbox.messages)
    assert len(mail_ids) == count
    from mawb.channels.smtp import message_id

    expected = {message_id(key, "news@shop.example"): key
                for key in rows.loc[rows["channel"] == "email", "idempotency_key"]}
    duplicated_mail = {expected[mid] for mid, seen in mail_ids.items() if seen > 1}
    assert duplicated_mail <= in_flight, duplicated_mail - in_flight
    assert in_flight, "the kills must land inside claimed batches"


def test_another_process_reads_between_batches(tmp_path: Path) -> None:
    count = 600
    http = HttpServer(lambda received: Answer(204, b"")).start()
    try:
        workspace = workspace_with(tmp_path, leads(count), {"hooks": webhook_connection(
            concurrency=8)})
        flow = _hook_flow(f"{http.url}/in")
        _queued(workspace, flow, count)
        process = _dispatcher(tmp_path, 60, 60)
        reads: list[int] = []
        while process.is_alive():
            try:
                store = duckdb.connect(str(workspace.store_path()), read_only=True)
            except duckdb.Error:
                time.sleep(0.005)  # a claim or record transaction holds the file just now
                continue
            try:
                row = store.execute(
                    "SELECT count(*) FROM outbox_all WHERE status = 'sent'").fetchone()
                reads.append(int(row[0]) if row else -1)
            finally:
                store.close()
            time.sleep(0.02)
        process.join(timeout=60)
        assert process.exitcode == 0
    finally:
        http.stop()
    assert len(http.requests) == count
    between = [sent for sent in reads if 0 < sent < count]
    assert len(set(between)) >= 3, reads  # it read mid-dispatch, after several batches
    assert reads == sorted(reads)
