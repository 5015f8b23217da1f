"""A deliberately plain, per-contact interpreter of the engine's semantics: the test oracle.

The engine (`mawb.engine.workspace`) moves whole cohorts with SQL. This module does the same
job the way Mautic, Laudspeaker or Dittofeed do it: Python dicts for contacts, events,
enrollments, tokens and outbox rows, and a loop over the tokens at each node. It exists so
that property tests can run random flows over random populations through both and demand
identical results, and so the engine benchmark has a naive baseline to beat.

Tick structure is the engine's: ingest (event effects) -> every node in topological order
(triggers enroll first) -> dispatch (goal, outbox rules, sandbox send, completions); loop
back-edges wake a microsecond later, i.e. at the next tick. Every registered node type has
a step here; a type without one raises `NotImplementedError`. Rows for a connection wait
`queued` until `deliver` (given the same provider answers as the engine's dispatcher); a
`database_query` runs its checked SQL on a copy of this interpreter's own tables.

Versions (docs/architecture.md section 6): `publish` adds a version that new contacts enter,
`move` moves in-flight enrollments onto it (same id = same node, or a mapping), and each
tick runs the current version, then drains every older version holding tokens as a whole
(its non-trigger nodes, then its dispatch) with the params it last ran with.

Conditions are evaluated by a tiny Python evaluator over the checked sqlglot tree (SQL
three-valued logic: `None` is NULL) covering columns, literals, params, comparisons,
AND/OR/NOT, arithmetic, IN, BETWEEN and IS NULL; anything else falls back to running the
compiled `mawb.expr.to_sql` expression on a one-row DuckDB relation of that contact (still
per contact). Events are known up front (no mid-run imports), so the engine's "new events"
rule (ingested or timestamped since the trigger's last run) reduces to timestamps in
(last run, now]. Cron schedules reuse `mawb.engine.schedule.next_fire`.

Usage::

    result = run_reference(flow, contacts_df, events_df, ticks=[t0, t1, ...])
    result.funnel()        # {node_id: {"entered", "completed", "waiting", "converted"}}
    result.messages        # sorted (key, contact, node, channel, iteration, sent_at)
"""

from __future__ import annotations

import json
import math
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlglot import exp

from mawb import graph, nodes
from mawb.engine.schedule import next_fire
from mawb.expr import parse_condition, to_sql
from mawb.intake import read_contacts, read_events
from mawb.nodes import actions, integrations, logic, triggers
from mawb.nodes.base import Category, Outputs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mawb.model import Flow, Node

EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)
SINGLE = "out"
EVERY_TICK = {"condition_check", "merge_branches"}
CONSENT_COLUMNS = {"email": "email_consent", "sms": "sms_consent", "web_push": "push_consent"}
CONTACT_CHANNELS = ("email", "sms", "web_push")
SEND_CHANNELS = {"email_send": "email", "sms_send": "sms", "web_push": "web_push"}
REQUEST_CHANNELS = {"external_api": "api", "webhook_call": "webhook"}
MESSAGE_CHANNELS = ("email", "sms", "web_push", "social")
ENGAGEMENT_DEFAULTS: dict[str, Any] = {
    "email_opens": 0, "email_clicks": 0, "last_open_at": None, "last_click_at": None,
    "converted": False, "converted_at": None, "unsubscribed": False, "do_not_contact": False,
}  # fmt: skip


# -- results --------------------------------------------------------------------------------
def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((value is None, "" if value is None else value) for value in row)


def _sorted(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=_sort_key)


@dataclass
class ReferenceResult:
    """Final state in a shape shared with `engine_result` (every list sorted).

    - node_log: (ts, contact_id, entry_number, node_id, event, branch, reason)
    - messages: (idempotency_key, contact_id, node_id, channel, iteration, sent_at)
    - outbox: (idempotency_key, contact_id, node_id, channel, iteration, status, not_before)
    - enrollments: (contact_id, entry_number, status, entered_at, exited_at, exit_reason)
    - tokens: (contact_id, entry_number, node_id, via, arrived_at, wake_at, deadline,
      iteration, state)
    - contacts: contact_id -> {attribute: value} for every attribute
    - versions: (contact_id, entry_number, version) of every enrollment
    - crm_records: (record_key, contact_id, object, fields as sorted JSON, created, updated)
    """

    node_log: list[tuple[Any, ...]]
    messages: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]
    enrollments: list[tuple[Any, ...]]
    tokens: list[tuple[Any, ...]]
    contacts: dict[str, dict[str, Any]]
    ticks: list[datetime] = field(default_factory=list)
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    crm_records: list[tuple[Any, ...]] = field(default_factory=list)

    def funnel(self) -> dict[str, dict[str, int]]:
        """Per node: entered / completed / converted transitions and tokens waiting now."""
        counts: dict[str, Counter[str]] = {}
        for _, _, _, node_id, event, _, _ in self.node_log:
            counts.setdefault(node_id, Counter())[event] += 1
        for token in self.tokens:
            counts.setdefault(token[2], Counter())["waiting_now"] += 1
        return {
            node_id: {"entered": c["entered"], "completed": c["completed"],
                      "waiting": c["waiting_now"], "converted": c["converted"]}
            for node_id, c in sorted(counts.items())
        }

    def attributes(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Only the given attributes of every contact (missing ones as None)."""
        wanted = list(names)
        return {cid: {n: _plain(row.get(n)) for n in wanted} for cid, row in self.contacts.items()}


# -- contacts and events ---------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Python value with NULLs as None, timestamps as naive UTC datetimes, numpy unwrapped."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is not None:
            value = value.tz_convert("UTC").tz_localize(None)
        return value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value


def contact_rows(contacts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Normalise contacts through `mawb.intake` (as the store does) into plain dicts."""
    frame = read_contacts(contacts)
    rows: dict[str, dict[str, Any]] = {}
    for record in frame.to_dict("records"):
        row = {**ENGAGEMENT_DEFAULTS}
        row.update({k: _plain(v) for k, v in record.items()})
        rows[str(row["contact_id"])] = row
    return rows


def event_rows(events: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Normalise events into plain dicts (ts naive UTC), sorted by time."""
    if events is None or len(events) == 0:
        return []
    frame = read_events(events)
    rows = [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(str(row["event_id"]), row)
    return sorted(unique.values(), key=lambda r: (r["ts"], str(r["event_id"])))


# -- conditions ------------------------------------------------------------------------------
class _Unsupported(Exception):
    """The Python evaluator does not cover this construct; use DuckDB for this contact."""


_COMPARE: dict[type[exp.Expr], Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: a == b, exp.NEQ: lambda a, b: a != b,
    exp.LT: lambda a, b: a < b, exp.LTE: lambda a, b: a <= b,
    exp.GT: lambda a, b: a > b, exp.GTE: lambda a, b: a >= b,
}  # fmt: skip
_ARITHMETIC: dict[type[exp.Expr], Callable[[Any, Any], Any]] = {
    exp.Add: lambda a, b: a + b, exp.Sub: lambda a, b: a - b, exp.Mul: lambda a, b: a * b,
}  # fmt: skip


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int | float) or value is None:
        return value
    raise _Unsupported(type(value).__name__)


def _evaluate(node: exp.Expr, lookup: Callable[[str], Any], params: dict[str, Any]) -> Any:
    """SQL value of `node` for one row (None = NULL); raises _Unsupported otherwise."""
    if isinstance(node, exp.Paren):
        return _evaluate(node.this, lookup, params)
    if isinstance(node, exp.Column):
        return _comparable(lookup(node.name))
    if isinstance(node, exp.Placeholder):
        return _comparable(params[str(node.name)])
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    if isinstance(node, exp.Neg):
        value = _evaluate(node.this, lookup, params)
        return None if value is None else -value
    if isinstance(node, exp.Not):
        value = _evaluate(node.this, lookup, params)
        return None if value is None else not value
    if isinstance(node, exp.And):
        left = _evaluate(node.this, lookup, params)
        right = _evaluate(node.expression, lookup, params)
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if isinstance(node, exp.Or):
        left = _evaluate(node.this, lookup, params)
        right = _evaluate(node.expression, lookup, params)
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    if type(node) in _COMPARE or type(node) in _ARITHMETIC:
        left = _evaluate(node.this, lookup, params)
        right = _evaluate(node.expression, lookup, params)
        if left is None or right is None:
            return None
        if isinstance(left, str) != isinstance(right, str):
            raise _Unsupported("mixed text and number")
        operator = _COMPARE.get(type(node)) or _ARITHMETIC[type(node)]
        return operator(left, right)
    if isinstance(node, exp.In) and not node.args.get("query"):
        value = _evaluate(node.this, lookup, params)
        options = [_evaluate(option, lookup, params) for option in node.expressions]
        if value is None:
            return None
        if value in [o for o in options if o is not None]:
            return True
        return None if None in options else False
    if isinstance(node, exp.Between):
        value = _evaluate(node.this, lookup, params)
        low = _evaluate(node.args["low"], lookup, params)
        high = _evaluate(node.args["high"], lookup, params)
        if value is None or low is None or high is None:
            return None
        return low <= value <= high
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return _evaluate(node.this, lookup, params) is None
    raise _Unsupported(type(node).__name__)


@lru_cache(maxsize=512)
def _tree(text: str) -> exp.Expr:
    return parse_condition(text).tree


def _duckdb_value(text: str, row: dict[str, Any], params: dict[str, Any], now: datetime,
                  column: Callable[[str], exp.Expression]) -> Any:
    """Run the compiled condition on a one-row DuckDB relation built from this contact."""
    import duckdb

    sql = to_sql(text, params, column=column, now=now)
    frame = pd.DataFrame([{k: v for k, v in row.items()}])
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("c", frame)
        found = connection.execute(f"SELECT ({sql}) FROM c").fetchone()
    finally:
        connection.close()
    return found[0] if found else None


def holds(text: str, row: dict[str, Any], params: dict[str, Any], now: datetime) -> bool:
    """Whether a contact condition is true for `row` (NULL counts as false)."""
    try:
        value = _evaluate(_tree(text), lambda name: row.get(name), params)
    except (_Unsupported, TypeError):
        column = lambda name: exp.column(name, table="c", quoted=True)  # noqa: E731
        value = _duckdb_value(text, row, params, now, column)
    return value is True


def event_holds(text: str, properties: str | None, params: dict[str, Any], now: datetime) -> bool:
    """Whether an event `where` holds over its JSON properties (values read as text)."""
    data = json.loads(properties) if properties else {}
    data = data if isinstance(data, dict) else {}

    def lookup(name: str) -> Any:
        value = data.get(name)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value)

    try:
        value = _evaluate(_tree(text), lookup, params)
    except (_Unsupported, TypeError):
        value = _duckdb_value(text, {name: lookup(name) for name in data}, params, now,
                              lambda name: exp.column(name, table="c", quoted=True))
    return value is True


# -- clock helpers ---------------------------------------------------------------------------
def _zone(row: dict[str, Any], fallback: str) -> zoneinfo.ZoneInfo:
    name = row.get("timezone")
    if isinstance(name, str) and name in _known_zones():
        return zoneinfo.ZoneInfo(name)
    return zoneinfo.ZoneInfo(fallback)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _to_local(moment: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _to_utc(local: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def next_local_time(base: datetime, clock: str, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first HH:MM in `zone` strictly after `base` (naive UTC in, naive UTC out)."""
    hours, minutes = (int(part) for part in clock.split(":"))
    local = _to_local(base, zone)
    candidate = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        minutes=hours * 60 + minutes)
    if candidate <= local:
        candidate += timedelta(days=1)
    return _to_utc(candidate, zone)


def _as_timestamp(value: Any) -> datetime | None:
    """TRY_CAST(value AS TIMESTAMP) for the values contacts hold."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return _plain(pd.Timestamp(value))
        except ValueError:
            return None
    return None


# -- the interpreter -------------------------------------------------------------------------
@dataclass
class _Token:
    token_id: int
    enrollment: dict[str, Any]
    node_id: str
    via: str | None
    arrived_at: datetime
    wake_at: datetime | None
    deadline: datetime | None = None
    iteration: int | None = 0
    state: str | None = None

    @property
    def contact_id(self) -> str:
        return str(self.enrollment["contact_id"])


@dataclass
class _Decision:
    branch: str | None
    wait_until: datetime | None = None
    deadline: datetime | None = None
    iteration: int | None = None


class Reference:
    """One flow over one population, advanced tick by tick (see module docstring)."""

    def __init__(self, flow: Flow, contacts: pd.DataFrame, events: pd.DataFrame | None = None,
                 params: dict[str, Any] | None = None) -> None:
        self.contacts = contact_rows(contacts)
        self.events = event_rows(events)
        self.applied: set[str] = set()
        self.versions: dict[int, tuple[Flow, dict[str, Any]]] = {}
        self.current = flow.version
        self.crm_records: dict[str, dict[str, Any]] = {}
        self.publish(flow, params)
        self.enrollments: list[dict[str, Any]] = []
        self.tokens: list[_Token] = []
        self.outbox: dict[str, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self.node_log: list[tuple[Any, ...]] = []
        self.trigger_state: dict[str, datetime | None] = {}
        self.requests: list[tuple[str, str, datetime]] = []
        self.next_token = 0
        self.ticks: list[datetime] = []

    def _use(self, version: int) -> None:
        """Make `version` the one the node stages and dispatch below work on."""
        self.flow, self.params = self.versions[version]
        self.order = graph.topological_order(self.flow)
        self.parsed = {n.id: nodes.get(n.type).parse(n.params) for n in self.flow.nodes}

    def publish(self, flow: Flow, params: dict[str, Any] | None = None) -> None:
        """Deploy `flow` as the version new contacts enter (older ones keep draining)."""
        self.versions[flow.version] = (flow, {**flow.params, **(params or {})})
        self.current = flow.version
        self._use(flow.version)
        self._written_columns()

    def move(self, from_version: int, mapping: dict[str, str], now: datetime) -> None:
        """`mawb.versions.move_in_flight`: active enrollments of `from_version` whose every
        token sits at a mapped node move whole onto the current version."""
        now = _plain(now)
        for enrollment in self.enrollments:
            if enrollment["version"] != from_version or enrollment["status"] != "active":
                continue
            mine = [t for t in self.tokens if t.enrollment is enrollment]
            if any(t.node_id not in mapping for t in mine):
                continue
            enrollment["version"] = self.current
            for token in mine:
                token.node_id = mapping[token.node_id]
                self._log(now, enrollment, token.node_id, "moved", None, f"from v{from_version}")

    def _written_columns(self) -> None:
        for node in self.flow.nodes:
            params = self.parsed[node.id]
            mirrored = params.fields if getattr(params, "mirror_attributes", False) else {}
            for name in [*getattr(params, "set", {}), *getattr(params, "increment", {}),
                         *mirrored, *getattr(params, "store", {})]:
                for row in self.contacts.values():
                    row.setdefault(name, None)

    # -- public ----------------------------------------------------------------------------
    def request_enrollment(self, node_id: str, contact_ids: list[str], now: datetime) -> None:
        """Queue contacts for a manual trigger (as `Workspace.request_enrollment`)."""
        self.requests += [(node_id, c, _plain(now)) for c in contact_ids]

    def tick(self, now: datetime, params: dict[str, Any] | None = None) -> None:
        """One tick of the current version (`params`, when given, override its defaults
        from now on), then the drain of every older version that still holds tokens."""
        now = _plain(now)
        self.ticks.append(now)
        if params is not None:
            flow = self.versions[self.current][0]
            self.versions[self.current] = (flow, {**flow.params, **params})
        self._use(self.current)
        self.ingest(now)
        for node_id in self.order:
            self.node_stage(node_id, now)
        self.dispatch(now)
        live = {t.enrollment["version"] for t in self.tokens} | {
            r["version"] for r in self.outbox.values() if r["status"] == "pending"}
        for version in sorted(live - {self.current}):  # their tokens, their deferred rows
            self._use(version)
            for node_id in self.order:
                if nodes.get(self.flow.node(node_id).type).category is not Category.TRIGGER:
                    self.node_stage(node_id, now)
            self.dispatch(now)
        self._use(self.current)

    def deliver(self, now: datetime, respond: Callable[[str], Any]) -> None:
        """The dispatcher over `queued` rows: sent, and an api row's answer (`respond` of the
        contact id, the provider's reply) mapped into the contact through the node's `store`."""
        now = _plain(now)
        queued = [r for r in self.outbox.values()
                  if r["status"] == "queued" and r["not_before"] <= now]
        self._suppress(now, queued)
        for row in queued:
            if row["status"] != "queued":
                continue
            row.update(status="sent", sent_at=now)
            if row["channel"] in MESSAGE_CHANNELS:
                self.messages.append({**row})
            store = row.get("store") or {}
            if row["channel"] == "api" and row["contact_id"] is not None and store:
                answer = respond(row["contact_id"])
                contact = self.contacts[row["contact_id"]]
                for name, path in store.items():
                    value = _dig(answer, path)
                    if value is not None:
                        contact[name] = value if isinstance(value, str) else json.dumps(value)

    def next_due(self, now: datetime) -> datetime | None:
        """The earliest time after `now` at which a tick would change anything."""
        now = _plain(now)
        found = [t.wake_at for t in self.tokens if t.wake_at is not None and t.wake_at > now]
        found += [r["not_before"] for r in self.outbox.values()
                  if r["status"] == "pending" and r["not_before"] > now]
        found += [e["ts"] for e in self.events if e["ts"] > now]
        for node in self.flow.nodes:
            due = self._next_trigger_time(node, now)
            if due is not None:
                found.append(due)
        return min(found) if found else None

    def result(self) -> ReferenceResult:
        entry = {id(e): e["entry_number"] for e in self.enrollments}
        return ReferenceResult(
            node_log=_sorted(self.node_log),
            messages=_sorted(
                (m["key"], m["contact_id"], m["node_id"], m["channel"], m["iteration"],
                 m["sent_at"]) for m in self.messages),
            outbox=_sorted(
                (r["key"], r["contact_id"], r["node_id"], r["channel"], r["iteration"],
                 r["status"], r["not_before"]) for r in self.outbox.values()),
            enrollments=_sorted(
                (e["contact_id"], e["entry_number"], e["status"], e["entered_at"],
                 e["exited_at"], e["exit_reason"]) for e in self.enrollments),
            tokens=_sorted(
                (t.contact_id, entry[id(t.enrollment)], t.node_id, t.via, t.arrived_at,
                 t.wake_at, t.deadline, t.iteration, t.state) for t in self.tokens),
            contacts={cid: dict(row) for cid, row in sorted(self.contacts.items())},
            ticks=list(self.ticks),
            versions=_sorted((e["contact_id"], e["entry_number"], e["version"])
                             for e in self.enrollments),
            crm_records=_sorted(
                (key, r["contact_id"], r["object"], json.dumps(r["fields"], sort_keys=True),
                 r["created_at"], r["updated_at"]) for key, r in self.crm_records.items()),
        )

    # -- ingest ----------------------------------------------------------------------------
    def ingest(self, now: datetime) -> None:
        """Apply the effects of events whose time has come (opens, clicks, buys, unsubscribes)."""
        due = [e for e in self.events if e["ts"] <= now and e["event_id"] not in self.applied]
        by_contact: dict[str, list[dict[str, Any]]] = {}
        for event in due:
            by_contact.setdefault(str(event["contact_id"]), []).append(event)
            self.applied.add(event["event_id"])
        for contact_id, events in by_contact.items():
            row = self.contacts.get(contact_id)
            if row is None:
                continue
            opens = [e["ts"] for e in events if e["name"] == "email_open"]
            clicks = [e["ts"] for e in events if e["name"] == "email_click"]
            buys = [e["ts"] for e in events if e["name"] in ("purchase", "conversion")]
            row["email_opens"] = (row.get("email_opens") or 0) + len(opens)
            row["email_clicks"] = (row.get("email_clicks") or 0) + len(clicks)
            row["last_open_at"] = _greatest(row.get("last_open_at"), max(opens, default=None))
            row["last_click_at"] = _greatest(row.get("last_click_at"), max(clicks, default=None))
            row["converted"] = bool(row.get("converted")) or bool(buys)
            if row.get("converted_at") is None:
                row["converted_at"] = min(buys, default=None)
            row["unsubscribed"] = bool(row.get("unsubscribed")) or any(
                e["name"] == "unsubscribe" for e in events)

    # -- triggers --------------------------------------------------------------------------
    def _candidates(self, node: Node, now: datetime) -> list[str]:
        params = self.parsed[node.id]
        last = self.trigger_state.get(node.id)
        fired = last
        chosen: list[str] = []
        audience = getattr(params, "audience", None)

        def in_audience(row: dict[str, Any]) -> bool:
            return audience is None or holds(audience, row, self.params, now)

        if isinstance(params, triggers.TimeBasedParams):
            if params.date_field:
                offset = timedelta(days=params.offset_days)
                for cid, row in self.contacts.items():
                    when = _as_timestamp(row.get(params.date_field))
                    if when is not None and (last or EPOCH) < when + offset <= now \
                            and in_audience(row):
                        chosen.append(cid)
                fired = now
            else:
                due = next_fire(params.schedule, last)
                if due is not None and due <= now:
                    chosen = [cid for cid, row in self.contacts.items() if in_audience(row)]
                    fired = now
                elif last is None:
                    fired = now
        elif isinstance(params, triggers.BehavioralParams):
            window = timedelta(days=params.within_days) if params.within_days else None
            for cid, row in self.contacts.items():
                mine = [e for e in self.events
                        if e["contact_id"] == cid and e["name"] in params.events and e["ts"] <= now]
                new = [e for e in mine if last is None or e["ts"] > last]
                counted = [e for e in mine if window is None or e["ts"] > now - window]
                if new and len(counted) >= params.min_count and in_audience(row):
                    chosen.append(cid)
            fired = now
        elif isinstance(params, triggers.EventParams | triggers.WebhookParams):
            for cid, row in self.contacts.items():
                if any(e["contact_id"] == cid and e["name"] == params.event and e["ts"] <= now
                       and (last is None or e["ts"] > last)
                       and (params.where is None
                            or event_holds(params.where, e.get("properties"), self.params, now))
                       for e in self.events) and in_audience(row):
                    chosen.append(cid)
            fired = now
        elif isinstance(params, triggers.ManualParams):
            wanted = set(params.contacts) if last is None else set()
            wanted |= {c for n, c, at in self.requests if n == node.id and at <= now}
            self.requests = [r for r in self.requests if not (r[0] == node.id and r[2] <= now)]
            chosen = [cid for cid in self.contacts if cid in wanted]
            fired = now
        else:
            raise NotImplementedError(f"reference has no trigger {node.type}")
        self.trigger_state[node.id] = fired
        return chosen

    def _enroll(self, node: Node, contact_ids: list[str], now: datetime) -> None:
        reentry = self.flow.settings.reentry.value
        for cid in dict.fromkeys(contact_ids):
            mine = [e for e in self.enrollments if e["contact_id"] == cid]
            if reentry == "never" and mine:
                continue
            if reentry == "after_exit" and any(e["status"] == "active" for e in mine):
                continue
            enrollment = {"contact_id": cid, "entry_number": len(mine) + 1, "status": "active",
                          "entered_at": now, "exited_at": None, "exit_reason": None,
                          "version": self.flow.version}
            self.enrollments.append(enrollment)
            self.tokens.append(self._token(enrollment, node.id, None, now, now, 0))
            self._log(now, enrollment, node.id, "entered", None, "enrolled")

    def _next_trigger_time(self, node: Node, now: datetime) -> datetime | None:
        params = self.parsed[node.id]
        if not isinstance(params, triggers.TimeBasedParams):
            return None
        if params.date_field:
            offset = timedelta(days=params.offset_days)
            times = [when + offset for row in self.contacts.values()
                     if (when := _as_timestamp(row.get(params.date_field))) is not None]
            later = [t for t in times if t > now]
            return min(later) if later else None
        due = next_fire(params.schedule, self.trigger_state.get(node.id) or now)
        return due if due is None or due > now else now + MICROSECOND

    # -- node stages -----------------------------------------------------------------------
    def _token(self, enrollment: dict[str, Any], node_id: str, via: str | None,
               arrived_at: datetime, wake_at: datetime | None, iteration: int | None) -> _Token:
        self.next_token += 1
        return _Token(self.next_token, enrollment, node_id, via, arrived_at, wake_at,
                      iteration=iteration)

    def _log(self, now: datetime, enrollment: dict[str, Any], node_id: str, event: str,
             branch: str | None, reason: str | None) -> None:
        self.node_log.append((now, enrollment["contact_id"], enrollment["entry_number"], node_id,
                              event, branch, reason))

    def node_stage(self, node_id: str, now: datetime) -> None:
        """Enroll (triggers), then decide and move every due token at this node."""
        node = self.flow.node(node_id)
        node_type = nodes.get(node.type)
        if node_type.category is Category.TRIGGER:
            self._enroll(node, self._candidates(node, now), now)
        every = node.type in EVERY_TICK
        cohort = [t for t in self.tokens if t.node_id == node_id
                  and t.enrollment["version"] == self.flow.version
                  and (every or (t.wake_at is not None and t.wake_at <= now))]
        if not cohort:
            return
        cohort.sort(key=lambda t: t.token_id)
        if node_type.category is Category.TRIGGER:
            decisions = {t.token_id: _Decision(SINGLE) for t in cohort}
        else:
            decisions = self._decide(node, cohort, now)
        self._apply(node, cohort, decisions, now)
        touched = {id(t.enrollment): t.enrollment for t in cohort}
        self._complete(list(touched.values()), now)

    def _decide(self, node: Node, cohort: list[_Token], now: datetime) -> dict[int, _Decision]:
        params = self.parsed[node.id]
        if node.type in SEND_CHANNELS or node.type in REQUEST_CHANNELS:
            channel = SEND_CHANNELS.get(node.type) or REQUEST_CHANNELS[node.type]
            for token in cohort:
                self._enqueue(node, token, channel, now)
            return {t.token_id: _Decision(SINGLE) for t in cohort}
        if isinstance(params, actions.SocialParams):
            for network in params.networks:
                self._enqueue_once(node, f"{network}:{now.isoformat()}", "social", now)
            return {t.token_id: _Decision(SINGLE) for t in cohort}
        if isinstance(params, actions.ApiCallParams):
            if params.batch:
                self._enqueue_once(node, f"batch:{now}", "api", now)
            else:
                for token in cohort:
                    self._enqueue(node, token, "api", now)
            return {t.token_id: _Decision(SINGLE) for t in cohort}
        if isinstance(params, integrations.CrmUpdateParams):
            self._crm(node, params, cohort, now)
            return {t.token_id: _Decision(SINGLE) for t in cohort}
        if isinstance(params, integrations.DatabaseQueryParams):
            self._query(params, cohort)
            return {t.token_id: _Decision(SINGLE) for t in cohort}
        if isinstance(params, actions.DataUpdateParams):
            self._update(params, cohort)
            return {t.token_id: _Decision(SINGLE) for t in cohort}
        if isinstance(params, logic.MergeParams):
            return self._merge(node, params, cohort)
        decide: Callable[[_Token], _Decision]
        if isinstance(params, actions.DelayParams):
            decide = lambda t: self._delay(params, t, now)  # noqa: E731
        elif isinstance(params, actions.ConditionCheckParams):
            decide = lambda t: self._check(params, t, now)  # noqa: E731
        elif isinstance(params, logic.IfParams):
            decide = lambda t: _Decision(  # noqa: E731
                "true" if holds(params.condition, self._row(t), self.params, now) else "false")
        elif isinstance(params, logic.SwitchParams):
            decide = lambda t: _Decision(next(  # noqa: E731
                (c.name for c in params.cases
                 if holds(c.condition, self._row(t), self.params, now)), "default"))
        elif isinstance(params, logic.LoopParams):
            decide = lambda t: self._loop(node, params, t, now)  # noqa: E731
        elif isinstance(params, logic.ParallelParams):
            decide = lambda t: _Decision(SINGLE)  # noqa: E731
        else:
            raise NotImplementedError(f"reference has no step for {node.type}")
        return {t.token_id: decide(t) for t in cohort}

    def _row(self, token: _Token) -> dict[str, Any]:
        return self.contacts[token.contact_id]

    def _delay(self, params: actions.DelayParams, token: _Token, now: datetime) -> _Decision:
        until = token.arrived_at + timedelta(seconds=params.seconds())
        if params.until_field:
            field_time = _as_timestamp(self._row(token).get(params.until_field))
            until = (field_time + timedelta(days=params.offset_days)
                     if field_time is not None else token.arrived_at)
        if params.at_local_time:
            zone = _zone(self._row(token), self.flow.settings.timezone)
            until = next_local_time(until, params.at_local_time, zone)
        if token.state == "waiting" or until <= now:
            return _Decision(SINGLE, until)
        return _Decision(None, until)

    def _check(self, params: actions.ConditionCheckParams, token: _Token,
               now: datetime) -> _Decision:
        deadline = token.deadline or token.arrived_at + timedelta(days=params.timeout_days)
        if holds(params.condition, self._row(token), self.params, now):
            return _Decision("met", deadline, deadline)
        if deadline <= now:
            return _Decision("timeout", deadline, deadline)
        return _Decision(None, deadline, deadline)

    def _loop(self, node: Node, params: logic.LoopParams, token: _Token,
              now: datetime) -> _Decision:
        returning = {s for s, target, _ in graph.back_edges(self.flow) if target == node.id}
        passes = (token.iteration or 0) + 1 if token.via in returning else 1
        done = passes > params.max_iterations or (
            params.until is not None and holds(params.until, self._row(token), self.params, now))
        return _Decision("done", iteration=0) if done else _Decision("body", iteration=passes)

    def _merge(self, node: Node, params: logic.MergeParams,
               cohort: list[_Token]) -> dict[int, _Decision]:
        needed = len({edge.source for edge in self.flow.incoming(node.id)})
        groups: dict[int, list[_Token]] = {}
        for token in cohort:
            groups.setdefault(id(token.enrollment), []).append(token)
        decisions = {}
        for group in groups.values():
            ready = params.mode == "any" or len({t.via for t in group}) >= needed
            enrollment = group[0].enrollment
            already = any(entry[1] == enrollment["contact_id"]
                          and entry[2] == enrollment["entry_number"] and entry[3] == node.id
                          and entry[4] == "completed" and entry[5] == SINGLE
                          for entry in self.node_log)
            first = min(t.token_id for t in group)
            for token in group:
                if not ready:
                    decisions[token.token_id] = _Decision(None)
                elif token.token_id == first and not already:
                    decisions[token.token_id] = _Decision(SINGLE)
                else:
                    decisions[token.token_id] = _Decision("joined")
        return decisions

    def _update(self, params: actions.DataUpdateParams, cohort: list[_Token]) -> None:
        passes = Counter(t.contact_id for t in cohort)
        for cid, count in passes.items():
            row = self.contacts[cid]
            row.update(params.set)
            for name, amount in params.increment.items():
                row[name] = (row.get(name) or 0) + count * amount

    def _enqueue(self, node: Node, token: _Token, channel: str, now: datetime) -> None:
        enrollment = token.enrollment
        key = (f"{self.flow.id}:{self.flow.version}:{token.contact_id}:{node.id}:"
               f"{enrollment['entry_number']}:{token.iteration or 0}")
        self._add_row(node, key, token.contact_id, token.iteration, channel, now)

    def _enqueue_once(self, node: Node, suffix: str, channel: str, now: datetime) -> None:
        """A row not about a contact (a social post, a batch API call), once per firing."""
        key = f"{self.flow.id}:{self.flow.version}:{node.id}:{suffix}"
        self._add_row(node, key, None, 0, channel, now)

    def _add_row(self, node: Node, key: str, contact_id: str | None, iteration: int | None,
                 channel: str, now: datetime) -> None:
        if key in self.outbox:
            return
        params = self.parsed[node.id]
        crm = getattr(params, "crm", "local")
        connection = (getattr(params, "connection", None)
                      or (crm if channel == "crm" and crm != "local" else None)
                      or self.flow.settings.connections.get(channel))
        self.outbox[key] = {"key": key, "contact_id": contact_id, "node_id": node.id,
                            "iteration": iteration, "channel": channel,
                            "version": self.flow.version, "connection": connection,
                            "store": dict(getattr(params, "store", None) or {}),
                            "status": "pending", "created_at": now, "not_before": now}

    def _crm(self, node: Node, params: integrations.CrmUpdateParams, cohort: list[_Token],
             now: datetime) -> None:
        """A CRM record per contact (update: one per object, merged; create: one per pass),
        in the local table or as a request to the named CRM; fields mirrored if asked."""
        create = isinstance(params, integrations.CrmCreateParams)
        for token in cohort:
            if params.crm != "local":
                self._enqueue(node, token, "crm", now)
                continue
            row = self.contacts[token.contact_id]
            fields = {name: _render(value, row, self.params) if isinstance(value, str)
                      else value for name, value in params.fields.items()}
            key = (f"{self.flow.id}:{self.flow.version}:{token.contact_id}:{node.id}:"
                   f"{token.enrollment['entry_number']}:{token.iteration or 0}" if create
                   else f"{params.object}:{token.contact_id}")
            record = self.crm_records.get(key)
            if record is None:
                self.crm_records[key] = {"contact_id": token.contact_id,
                                         "object": params.object, "fields": fields,
                                         "created_at": now, "updated_at": now}
            elif not create:
                record["fields"] = {**record["fields"], **fields}
                record["updated_at"] = now
        if params.mirror_attributes:
            plain = {k: v for k, v in params.fields.items()
                     if not (isinstance(v, str) and "{{" in v)}
            for token in cohort:
                self.contacts[token.contact_id].update(plain)

    def _query(self, params: integrations.DatabaseQueryParams, cohort: list[_Token]) -> None:
        """Run the checked read-only query over this interpreter's contacts and events (in
        a throwaway DuckDB) and copy the chosen columns onto the cohort's contacts."""
        import duckdb

        from mawb.query import check_query

        connection = duckdb.connect()
        try:
            connection.register("contacts", pd.DataFrame(list(self.contacts.values())))
            connection.register("events", pd.DataFrame(
                self.events or [{"event_id": None, "contact_id": None, "name": None,
                                 "ts": None, "properties": None}]))
            frame = connection.execute(check_query(params.sql).sql).fetchdf()
        finally:
            connection.close()
        wanted = [c for c in frame.columns if c != "contact_id"
                  and (not params.columns or c in params.columns)]
        found = {str(r["contact_id"]): r for r in frame.to_dict("records")}
        for row in self.contacts.values():
            for name in wanted:
                row.setdefault(name, None)
        for cid in {t.contact_id for t in cohort}:
            if cid in found:
                self.contacts[cid].update({n: _plain(found[cid][n]) for n in wanted})

    def _apply(self, node: Node, cohort: list[_Token], decisions: dict[int, _Decision],
               now: datetime) -> None:
        node_type = nodes.get(node.type)
        routes = [((edge.branch or "") if node_type.outputs is Outputs.BRANCHES else SINGLE,
                   edge.target) for edge in self.flow.outgoing(node.id)]
        back = {target for source, target, _ in graph.back_edges(self.flow) if source == node.id}
        leaving: set[int] = set()
        for token in cohort:
            decision = decisions[token.token_id]
            if decision.branch is None:
                if token.state is None:
                    self._log(now, token.enrollment, node.id, "waiting", None, None)
                token.wake_at = decision.wait_until
                token.deadline = decision.deadline or token.deadline
                token.state = "waiting"
                continue
            self._log(now, token.enrollment, node.id, "completed", decision.branch, None)
            leaving.add(token.token_id)
            iteration = decision.iteration if decision.iteration is not None else token.iteration
            for branch, target in routes:
                if branch != decision.branch:
                    continue
                wake = now + MICROSECOND if target in back else now
                self.tokens.append(self._token(token.enrollment, target, node.id, now, wake,
                                               iteration))
                self._log(now, token.enrollment, target, "entered", None, node.id)
        self.tokens = [t for t in self.tokens if t.token_id not in leaving]

    def _complete(self, enrollments: list[dict[str, Any]], now: datetime) -> None:
        holding = {id(t.enrollment) for t in self.tokens}
        for enrollment in enrollments:
            if enrollment["status"] == "active" and id(enrollment) not in holding:
                enrollment.update(status="completed", exited_at=now, exit_reason="end of path")

    # -- dispatch --------------------------------------------------------------------------
    def dispatch(self, now: datetime) -> None:
        """Goal conversions, then the outbox rules and sandbox send, then completions: of the
        version in use only (its own goal, params and settings; section 6: each version is
        advanced as a whole)."""
        goal = self.flow.settings.goal
        if goal:
            for enrollment in self.enrollments:
                if enrollment["status"] != "active" or enrollment["version"] != self.flow.version:
                    continue
                if not holds(goal, self.contacts[enrollment["contact_id"]], self.params, now):
                    continue
                for token in [t for t in self.tokens if t.enrollment is enrollment]:
                    self._log(now, enrollment, token.node_id, "converted", None, "goal")
                self.tokens = [t for t in self.tokens if t.enrollment is not enrollment]
                enrollment.update(status="converted", exited_at=now, exit_reason="goal")
        self._suppress(now)
        self._quiet_hours(now)
        self._frequency_cap(now)
        for row in self._due(now):
            if row["connection"] is not None:
                row["status"] = "queued"
                continue
            row.update(status="sent", sent_at=now)
            if row["channel"] in MESSAGE_CHANNELS:
                self.messages.append({**row})
        self._complete(self.enrollments, now)

    def _due(self, now: datetime, channels: Iterable[str] | None = None) -> list[dict[str, Any]]:
        wanted = set(channels) if channels is not None else None
        return [r for r in self.outbox.values() if r["status"] == "pending"
                and r["version"] == self.flow.version
                and r["not_before"] <= now and (wanted is None or r["channel"] in wanted)]

    def _suppress(self, now: datetime, rows: list[dict[str, Any]] | None = None) -> None:
        for row in self._due(now, CONTACT_CHANNELS) if rows is None else rows:
            if row["channel"] not in CONTACT_CHANNELS:
                continue
            contact = self.contacts[row["contact_id"]]
            column = CONSENT_COLUMNS[row["channel"]]
            no_consent = column in contact and contact[column] is False
            if contact.get("unsubscribed") or contact.get("do_not_contact") or no_consent:
                row["status"] = "suppressed"

    def _quiet_hours(self, now: datetime) -> None:
        quiet = self.flow.settings.quiet_hours
        if quiet is None:
            return
        start, end = _minutes(quiet.start), _minutes(quiet.end)
        for row in self._due(now, CONTACT_CHANNELS):
            zone = _zone(self.contacts[row["contact_id"]], self.flow.settings.timezone)
            local = _to_local(now, zone)
            minute = local.hour * 60 + local.minute
            inside = start <= minute < end if start < end else minute >= start or minute < end
            if not inside:
                continue
            end_local = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
                minutes=end, days=1 if minute >= end else 0)
            row["not_before"] = _to_utc(end_local, zone)

    def _frequency_cap(self, now: datetime) -> None:
        cap = self.flow.settings.frequency_cap
        if cap is None:
            return
        window = timedelta(days=cap.per_days)
        by_contact: dict[str, list[dict[str, Any]]] = {}
        for row in self._due(now, CONTACT_CHANNELS):
            by_contact.setdefault(row["contact_id"], []).append(row)
        for contact_id, rows in by_contact.items():
            recent = [m["sent_at"] for m in self.messages if m["contact_id"] == contact_id
                      and m["channel"] in CONTACT_CHANNELS and m["sent_at"] > now - window]
            rows.sort(key=lambda r: (r["created_at"], r["key"]))
            for rank, row in enumerate(rows, start=1):
                if len(recent) + rank <= cap.max_messages:
                    continue
                if cap.mode.value == "skip":
                    row["status"] = "skipped"
                else:
                    row["not_before"] = (min(recent) if recent else now) + window


def _dig(data: Any, path: str) -> Any:
    """The value at a dotted path of a JSON answer (`items.0.id`), or None."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _render(text: str, row: dict[str, Any], params: dict[str, Any]) -> str:
    """A Liquid field for one contact, in python-liquid (the engine renders it in SQL)."""
    from mawb.personalize import render

    return render(text, {**params, **row}) if "{{" in text or "{%" in text else text


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _greatest(left: datetime | None, right: datetime | None) -> datetime | None:
    present = [v for v in (left, right) if v is not None]
    return max(present) if present else None


def run_reference(flow: Flow, contacts: pd.DataFrame, events: pd.DataFrame | None = None,
                  ticks: Iterable[datetime] | None = None, *, start: datetime | None = None,
                  max_ticks: int = 200, params: dict[str, Any] | None = None,
                  requests: Iterable[tuple[str, list[str], datetime]] = ()) -> ReferenceResult:
    """Run `flow` over `contacts` at the given tick times and return the final state.

    Without `ticks`, the reference drives its own virtual clock from `start`: tick, then jump
    to `next_due`, at most `max_ticks` times. `requests` are manual-trigger enrollments
    (node id, contact ids, requested at), queued before the first tick.
    """
    reference = Reference(flow, contacts, events, params)
    for node_id, contact_ids, at in requests:
        reference.request_enrollment(node_id, contact_ids, at)
    if ticks is not None:
        for now in ticks:
            reference.tick(now)
        return reference.result()
    if start is None:
        raise ValueError("run_reference needs ticks or a start time")
    now: datetime | None = _plain(start)
    for _ in range(max_ticks):
        if now is None:
            break
        reference.tick(now)
        now = reference.next_due(now)
    return reference.result()


def engine_result(workspace: Any, flow: Flow) -> ReferenceResult:
    """The engine store's state for `flow` (every partition) in `ReferenceResult`'s shape."""
    log: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    outbox: list[tuple[Any, ...]] = []
    enrollments: list[tuple[Any, ...]] = []
    tokens: list[tuple[Any, ...]] = []
    contacts: dict[str, dict[str, Any]] = {}
    ticks: set[datetime] = set()
    versions: list[tuple[Any, ...]] = []
    crm: list[tuple[Any, ...]] = []
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            def rows(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(_plain(v) for v in row)
                        for row in connection.execute(sql, [flow.id]).fetchall()]

            log += rows("SELECT l.ts, l.contact_id, e.entry_number, l.node_id, l.event, "
                        "l.branch, l.reason FROM node_log l JOIN enrollments e "
                        "USING (enrollment_id) WHERE l.flow_id = ?")
            messages += rows("SELECT m.idempotency_key, m.contact_id, m.node_id, m.channel, "
                             "o.iteration, m.sent_at FROM messages m JOIN outbox_all o "
                             "USING (idempotency_key) WHERE m.flow_id = ?")
            outbox += rows("SELECT idempotency_key, contact_id, node_id, channel, iteration, "
                           "status, not_before FROM outbox_all WHERE flow_id = ?")
            enrollments += rows("SELECT contact_id, entry_number, status, entered_at, "
                                "exited_at, exit_reason FROM enrollments WHERE flow_id = ?")
            tokens += rows("SELECT t.contact_id, e.entry_number, t.node_id, t.via, "
                           "t.arrived_at, t.wake_at, t.deadline, t.iteration, t.state "
                           "FROM tokens t JOIN enrollments e USING (enrollment_id) "
                           "WHERE t.flow_id = ?")
            ticks |= {row[0] for row in rows(
                "SELECT DISTINCT tick_time FROM runs WHERE flow_id = ?")}
            versions += rows("SELECT contact_id, entry_number, version FROM enrollments "
                             "WHERE flow_id = ?")
            crm += [(key, contact, kind, json.dumps(json.loads(fields), sort_keys=True),
                     created, updated) for key, contact, kind, fields, created, updated in rows(
                "SELECT record_key, contact_id, object, CAST(fields AS VARCHAR), created_at, "
                "updated_at FROM crm_records WHERE contact_id IN (SELECT contact_id FROM "
                "enrollments WHERE flow_id = ?)")]
            frame = connection.execute("SELECT * FROM contacts").fetchdf()
            for record in frame.to_dict("records"):
                contacts[str(record["contact_id"])] = {k: _plain(v) for k, v in record.items()}
    return ReferenceResult(
        node_log=_sorted(log), messages=_sorted(messages), outbox=_sorted(outbox),
        enrollments=_sorted(enrollments), tokens=_sorted(tokens),
        contacts=dict(sorted(contacts.items())), ticks=sorted(ticks),
        versions=_sorted(versions), crm_records=_sorted(crm),
    )


__all__ = ["Reference", "ReferenceResult", "engine_result", "holds", "next_local_time",
           "run_reference"]
