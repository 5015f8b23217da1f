"""Benchmark: the dispatcher delivering to a local SMTP server and a local HTTP server.

50k outbox rows per channel are queued by a real tick (a time-based trigger into `email_send`,
and into `webhook_call`), then `mawb.engine.deliver.deliver` sends them: claim a batch, close the
store, send through the SMTP / Standard Webhooks provider, record the batch. Reported per channel:

- messages per second end to end, and the provider alone on the same receiver (the baseline:
  `send_batch` over the same number of messages with no store around it), as a ratio;
- the engine overhead: claim + record time as a share of the total, and per message;
- a reader in another process opening the store read-only in a loop throughout: how often it
  got in and the longest it waited (it can only get in between a batch's claim and record).

Receivers run in their own processes (aiosmtpd, and a small asyncio HTTP/1.1 server that keeps
connections alive and counts Idempotency-Keys), on 127.0.0.1 only. Targets on a 2-core machine:
>= 500 emails/s, >= 2,000 HTTP sends/s, overhead <= 10%. Every phase is bounded by `--budget`.

    python bench/dispatch.py [--count 50000] [--budget 300] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BATCH = 10_000  # rows per claim; the per-batch store cost is paid once per batch


# -- receivers (own processes) ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _smtp_receiver(port: int, counter: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    stop.wait()
    controller.stop()


def _http_receiver(port: int, counter: Any, unique: Any, stop: Any) -> None:
    seen: set[bytes] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, key = 0, b""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"idempotency-key":
                        key = value.strip()
                if length:
                    await reader.readexactly(length)
                counter.value += 1
                if key not in seen:
                    seen.add(key)
                    unique.value += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            while not stop.is_set():
                await asyncio.sleep(0.05)

    asyncio.run(main())


def _reader(store: str, stop: Any, results: Any) -> None:
    """Open the store read-only in a loop; report successes, failures and the longest wait."""
    import duckdb

    successes = failures = 0
    last = time.monotonic()
    longest = 0.0
    while not stop.is_set():
        try:
            connection = duckdb.connect(store, read_only=True)
        except duckdb.Error:
            failures += 1
            time.sleep(0.002)
            continue
        try:
            connection.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()
        finally:
            connection.close()
        now = time.monotonic()
        longest = max(longest, now - last)
        last = now
        successes += 1
        time.sleep(0.01)
    results.put((successes, failures, longest))


# -- the workspace ------------------------------------------------------------------------------
def _workspace(home: Path, count: int, smtp_port: int, http_port: int) -> tuple[Any, Any, Any]:
    import pandas as pd
    import yaml

    from mawb.engine.workspace import Workspace
    from mawb.model import Flow

    (home / "hook.key").write_text("whsec_" + "YmVuY2gtZGlzcGF0Y2gtc2lnbmluZy1rZXktMzI=")
    (home / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "mail": {"kind": "smtp", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                 "from": "news@bench.example", "concurrency": 8, "unsubscribe_footer": False},
        "hooks": {"kind": "webhook", "signing_secret": "file:hook.key",
                  "allow_hosts": ["127.0.0.1"], "concurrency": 16}}}))
    workspace = Workspace(home)
    workspace.import_contacts(pd.DataFrame({
        "contact_id": [f"c{i:06d}" for i in range(count)],
        "email": [f"lead{i}@bench.example" for i in range(count)],
        "first_name": [f"Lead{i}" for i in range(count)], "lifecycle": "lead",
        "email_consent": True}))
    flows = []
    for flow_id, node in (("bench_mail", ("mail", "email_send", {
            "subject": "Hi {{ first_name }}", "body": "Hello {{ first_name }}, news."})),
                          ("bench_hooks", ("hook", "webhook_call", {
            "url": f"http://127.0.0.1:{http_port}/in", "event": "lead", "include": ["email"]}))):
        flow = Flow.new(flow_id).add("start", "time_based_trigger", audience="lifecycle = 'lead'",
                                     schedule="@once")
        flow.add(node[0], node[1], **node[2]).connect("start", node[0])
        flow.settings.connections = {"email": "mail", "webhook": "hooks"}
        workspace.deploy(flow)
        flows.append(flow)
    return workspace, flows[0], flows[1]


def _baseline(workspace: Any, connection_name: str, channel: str, count: int,
              payload: dict[str, Any]) -> float:
    """Messages per second of the provider alone (no store) on the same receiver."""
    from mawb.channels.base import OutboundMessage
    from mawb.channels.connections import LinkContext, load_connections, provider_for

    provider = provider_for(load_connections(workspace.home)[connection_name],
                            LinkContext.for_workspace(workspace.home))
    messages = [OutboundMessage(idempotency_key=f"baseline:{channel}:{i}", channel=channel,
                                recipient=f"lead{i}@bench.example", subject=f"Hi Lead{i}",
                                body=f"Hello Lead{i}, news.", payload=payload,
                                contact_id=f"c{i:06d}", flow_id="baseline", node_id="n",
                                flow_version=1) for i in range(count)]
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        results = provider.send_batch(messages[start:start + BATCH])
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return count / (time.perf_counter() - started)


def _providers(workspace: Any) -> dict[str, Any]:
    """One provider per connection for the whole run (as a long-running dispatcher keeps
    them: SMTP sessions are reopened per batch, the rate limiter spans batches)."""
    from mawb.channels.connections import LinkContext, load_connections, provider_for

    links = LinkContext.for_workspace(workspace.home)
    return {name: provider_for(connection, links)
            for name, connection in load_connections(workspace.home).items()}


def _dispatch(workspace: Any, flow: Any, budget: float, reader_home: str) -> dict[str, Any]:
    from mawb.engine.deliver import DeliveryReport, deliver

    context = multiprocessing.get_context("fork")
    stop, results = context.Event(), context.Queue()
    reader = context.Process(target=_reader, args=(reader_home, stop, results), daemon=True)
    reader.start()
    total = DeliveryReport()
    providers = _providers(workspace)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < budget:
            report = deliver(workspace, [flow.id], batch_size=BATCH, max_batches=5,
                             providers=providers)
            if not report.claimed:
                break
            for name in ("batches", "claimed", "sent", "retried", "dead"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.claim_seconds += report.claim_seconds
            total.send_seconds += report.send_seconds
            total.record_seconds += report.record_seconds
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        successes, failures, longest = results.get(timeout=30)
        reader.join(timeout=10)
    return {"report": total, "elapsed": elapsed, "reads": successes, "read_waits": failures,
            "longest_wait": longest}


def _print(channel: str, result: dict[str, Any], baseline: float, received: int) -> None:
    report = result["report"]
    rate = report.sent / result["elapsed"] if result["elapsed"] else 0.0
    engine = report.claim_seconds + report.record_seconds
    per_message = engine / report.claimed * 1e3 if report.claimed else 0.0
    print(f"{channel}: {report.sent} sent ({report.dead} dead, {report.retried} retried) in "
          f"{result['elapsed']:.1f} s = {rate:,.0f}/s; provider alone {baseline:,.0f}/s "
          f"(engine end to end = {rate / baseline:.0%} of it); receiver got {received}")
    print(f"  engine overhead: claim {report.claim_seconds:.2f} s + record "
          f"{report.record_seconds:.2f} s = {report.overhead:.1%} of the dispatch, "
          f"{per_message:.3f} ms per message over {report.batches} batches")
    print(f"  reader in another process: {result['reads']} reads succeeded during the dispatch, "
          f"longest wait {result['longest_wait']:.2f} s ({result['read_waits']} busy retries)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--budget", type=float, default=300.0, help="Seconds per phase at most")
    parser.add_argument("--quick", action="store_true", help="2,000 messages (a smoke test)")
    args = parser.parse_args()
    count = 2000 if args.quick else args.count
    context = multiprocessing.get_context("fork")
    smtp_port, http_port = _free_port(), _free_port()
    stop = context.Event()
    mails, hooks, unique = context.Value("l", 0), context.Value("l", 0), context.Value("l", 0)
    receivers = [context.Process(target=_smtp_receiver, args=(smtp_port, mails, stop)),
                 context.Process(target=_http_receiver, args=(http_port, hooks, unique, stop))]
    for process in receivers:
        process.daemon = True
        process.start()
    load = os.getloadavg()
    print(f"dispatch bench: {count} messages per channel, {os.cpu_count()} cores, load "
          f"{load[0]:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    memory = Path("/dev/shm")
    folder = tempfile.TemporaryDirectory(
        prefix="mawb-dispatch-", dir=memory if memory.is_dir() and os.access(memory, os.W_OK)
        else None)
    try:
        home = Path(folder.name)
        time.sleep(0.5)  # receivers listening
        started = time.perf_counter()
        workspace, mail_flow, hook_flow = _workspace(home, count, smtp_port, http_port)
        moment = datetime(2026, 11, 2, 9, 0)
        workspace.tick(mail_flow, moment)
        workspace.tick(hook_flow, moment)
        print(f"queued {2 * count} rows by two ticks in {time.perf_counter() - started:.1f} s")
        sample = min(count, 5000)
        mail_base = _baseline(workspace, "mail", "email", sample, {})
        hook_base = _baseline(workspace, "hooks", "webhook", sample,
                              {"url": f"http://127.0.0.1:{http_port}/in", "body": {"n": 1}})
        before_mail, before_hooks = mails.value, unique.value
        mail = _dispatch(workspace, mail_flow, args.budget, str(workspace.store_path()))
        _print("email over SMTP", mail, mail_base, mails.value - before_mail)
        hook = _dispatch(workspace, hook_flow, args.budget, str(workspace.store_path()))
        _print("webhook over HTTP", hook, hook_base, unique.value - before_hooks)
        duplicates = hooks.value - unique.value
        print(f"HTTP receiver: {unique.value} distinct Idempotency-Keys, {duplicates} repeats")
    finally:
        stop.set()
        for process in receivers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        folder.cleanup()


if __name__ == "__main__":
    main()
