"""Benchmark: real-time reaction of `mawb serve` — event accepted (202) to email received.

A real service process (`mawb serve --port 0`) runs a workspace with an event-triggered flow
whose first step is an email delivered over SMTP to a local aiosmtpd server in this process,
beside two more live flows (a daily schedule and a wait) so the loop has more than one flow to
look at. Events are posted one at a time (with a random pause between, like real traffic) and
each one's reaction time is measured from its 202 to the SMTP server receiving the message.
Targets (issue: live service): p50 <= 1 s, p99 <= 3 s.

Baseline, measured in the same run on the same workspace before the service starts: the same
work done the way a cron of `mawb run --once` would do it at best, in this (warm) process — write
the spool file, then one tick with short connections (load, tick, close) and one delivery pass
over SMTP. The ratio reaction / baseline shows what the always-on loop (held connections during
an iteration, woken by the intake, HTTP round trip included) costs or saves against that.

    python bench/reaction.py [--events 40] [--contacts 5000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
from aiosmtpd.controller import Controller

from mawb.engine import Workspace, lifecycle
from mawb.model import Flow
from mawb.service.keys import create_key
from mawb.service.spool import write_batch


class Inbox:
    """aiosmtpd handler: when each recipient's message arrived (monotonic clock)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.event:
            for recipient in envelope.rcpt_tos:
                self.arrived[recipient] = time.monotonic()
            self.event.notify_all()
        return "250 OK"

    def wait(self, recipient: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.event:
            while recipient not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.event.wait(left)
            return self.arrived[recipient]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flows() -> list[Flow]:
    react = Flow.new("react", settings={"connections": {"email": "mail"}, "tick": "15m"})
    react.add("start", "event_trigger", event="signup")
    react.add("mail", "email_send", subject="Welcome {{ first_name }}", body="Hello")
    react.connect("start", "mail")
    daily = Flow.new("daily_digest", settings={"tick": "1m"})
    daily.add("start", "time_based_trigger", schedule="@daily")
    daily.add("mail", "email_send", subject="Digest", body="News")
    daily.connect("start", "mail")
    nurture = Flow.new("nurture", settings={"tick": "1m"})
    nurture.add("start", "behavioral_trigger", events=["page_view"])
    nurture.add("wait", "delay_action", hours=24)
    nurture.add("mail", "email_send", subject="Still there?", body="Hi")
    nurture.connect("start", "wait").connect("wait", "mail")
    return [react, daily, nurture]


def prepare(home: Path, contacts: int, smtp_port: int) -> None:
    workspace = Workspace(home)
    workspace.import_contacts(pd.DataFrame({
        "contact_id": [f"c{i}" for i in range(contacts)],
        "first_name": [f"N{i}" for i in range(contacts)],
        "email": [f"c{i}@example.com" for i in range(contacts)],
        "email_consent": [True] * contacts}))
    (home / "connections.yaml").write_text(
        "connections:\n  mail:\n    kind: smtp\n    host: 127.0.0.1\n"
        f"    port: {smtp_port}\n    security: none\n    from: bench@example.com\n")
    for flow in flows():
        workspace.deploy(flow)
        lifecycle.change(workspace, flow.id, "live", by="bench")


def event(contact: str) -> dict[str, Any]:
    return {"contact_id": contact, "name": "signup", "event_id": uuid.uuid4().hex}


def baseline(home: Path, inbox: Inbox, contacts: list[str]) -> list[float]:
    """Per event, in this process: spool it, one short-connection tick, one delivery pass."""
    from mawb.engine.deliver import deliver

    workspace = Workspace(home)
    react = workspace.load_flow("react")
    seconds = []
    for contact in contacts:
        started = time.monotonic()
        record = {"kind": "event", "source": "api", "properties": {},
                  "ts": datetime.now(UTC).isoformat(), **event(contact)}
        write_batch(home / "spool", [record])
        workspace.tick(react, datetime.now(UTC))
        deliver(workspace)
        arrived = inbox.wait(f"{contact}@example.com", 30)
        if arrived is None:
            raise SystemExit(f"baseline: no email for {contact}")
        seconds.append(arrived - started)
    return seconds


def start_service(home: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from mawb.cli import main; main()", "serve", "--home",
         str(home), "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on " in line:
            return process, line.split("listening on ")[1].split()[0]
    raise SystemExit(f"mawb serve did not start (exit {process.poll()})")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--baseline", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a few events (smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.events, args.contacts, args.baseline = 5, 200, 2
    rng = random.Random(args.seed)
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    home = Path(tempfile.mkdtemp(prefix="mawb-reaction-"))
    process = None
    try:
        prepare(home, args.contacts, smtp_port)
        ids = rng.sample(range(args.contacts), args.events + args.baseline)
        floor = baseline(home, inbox, [f"c{i}" for i in ids[:args.baseline]])
        _, key = create_key(home, "bench", rate=10_000)
        process, url = start_service(home)
        reactions: list[float] = []
        intake: list[float] = []
        missed = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=10) as http:
            for number in ids[args.baseline:]:
                contact = f"c{number}"
                sent = time.monotonic()
                response = http.post("/v1/events", json=event(contact))
                accepted = time.monotonic()
                if response.status_code != 202:
                    raise SystemExit(f"POST /v1/events: {response.status_code} {response.text}")
                intake.append(accepted - sent)
                arrived = inbox.wait(f"{contact}@example.com", 15)
                if arrived is None:
                    missed += 1
                else:
                    reactions.append(arrived - accepted)
                time.sleep(rng.uniform(0.1, 0.6))
            rss = psutil.Process(process.pid).memory_info().rss
        report(args, reactions, floor, intake, missed, rss)
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        controller.stop()
        shutil.rmtree(home, ignore_errors=True)


def report(args: Any, reactions: list[float], floor: list[float], intake: list[float],
           missed: int, rss: int) -> None:
    p50, p99 = percentile(reactions, 0.5), percentile(reactions, 0.99)
    base = statistics.median(floor)
    result = {
        "events": args.events, "contacts": args.contacts, "missed": missed,
        "reaction_p50_s": round(p50, 3), "reaction_p99_s": round(p99, 3),
        "reaction_max_s": round(max(reactions), 3),
        "intake_202_p50_ms": round(statistics.median(intake) * 1000, 1),
        "baseline_tick_once_p50_s": round(base, 3),
        "reaction_over_baseline": round(p50 / base, 2) if base else None,
        "service_rss_mb": round(rss / 2**20),
        "load_average": os.getloadavg(),
        "targets": {"p50 <= 1 s": p50 <= 1.0, "p99 <= 3 s": p99 <= 3.0, "none missed": not missed},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
