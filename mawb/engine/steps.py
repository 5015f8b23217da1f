"""Cohort steps of the non-trigger node types, keyed by the registered type class.

Each step reads the `cohort` temp table, performs its side effects for the whole cohort in
SQL (outbox rows, attribute updates, CRM records) and fills `decision`. Side effects carry
an idempotency key (flow, version, contact, node, entry number, iteration) and are inserted
only when the key is new, so a step re-run after a crash never sends or counts twice.
Triggers live in `mawb.engine.enroll`. The outbox channel a step writes and what its rows
hold are the type's (`outbox_channel`, `message`); `step_for` finds a type's step, and a
test checks every registered type has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mawb.engine.cohort import SINGLE, literal, quote
from mawb.engine.render import (
    JSON_TARGETS,
    TEXT_TARGETS,
    column_types,
    fields_sql,
    liquid_to_sql,
    message_spec,
    render_fields,
)
from mawb.engine.store import contact_column_names
from mawb.flowplan import plan
from mawb.nodes import actions, integrations, logic
from mawb.personalize import OUTPUT_LIMIT, TemplateError
from mawb.protected import is_protected, protected_message
from mawb.query import check_query, run_query

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mawb.engine.cohort import Cohort
    from mawb.nodes.base import NodeType

Step = "Callable[[Cohort], None]"
STEPS: dict[type[NodeType], Callable[[Cohort], None]] = {}

KEY_SQL = (
    "t.flow_id || ':' || t.version || ':' || t.contact_id || ':' || t.node_id || ':' || "
    "coalesce(e.entry_number, 1) || ':' || coalesce(t.iteration, 0)"
)


def step(*node_types: type[NodeType]
         ) -> Callable[[Callable[[Cohort], None]], Callable[[Cohort], None]]:
    """Register the decorated function as the cohort step of `node_types`."""
    def register(function: Callable[[Cohort], None]) -> Callable[[Cohort], None]:
        for node_type in node_types:
            STEPS[node_type] = function
        return function

    return register


def step_for(node_type: type[NodeType]) -> Callable[[Cohort], None]:
    """The cohort step of a registered non-trigger type."""
    try:
        return STEPS[node_type]
    except KeyError:
        raise StepError(f"node type {node_type.type!r} has no engine step") from None


def _channel(cohort: Cohort) -> str:
    channel = cohort.node_type.outbox_channel
    if channel is None:
        raise StepError(f"node {cohort.node.id}: {cohort.node_type.type} has no outbox channel")
    return channel


def _columns(cohort: Cohort) -> set[str]:
    return contact_column_names(cohort.connection)


def _text_sql(cohort: Cohort, template: str | None, columns: set[str]) -> str:
    """SQL rendering a Liquid field set-based (the run's params inlined as literals), or NULL
    (rendered at dispatch) if not simple. `columns` is kept for callers; types are read here."""
    if not template:
        return "NULL"
    rendered = liquid_to_sql(template, column_types(cohort.connection), params=cohort.flow_params)
    return rendered if rendered is not None else "NULL"


def _unique_tokens(cohort: Cohort) -> str:
    """The cohort with one token per key.

    Two tokens of one enrollment at the same node in the same tick (paths of a fork meeting
    again without a merge) share a key; without a fork every enrollment has one token."""
    if not plan(cohort.flow).fans_out:
        return "cohort"
    return "(SELECT DISTINCT ON (enrollment_id, coalesce(iteration, 0)) * FROM cohort)"


def _new_keys(cohort: Cohort, key: str) -> str:
    """Keep rows whose key (the column `key`, computed once per row) this node has not
    written yet (only its own rows can match).

    An anti-join (NOT EXISTS), not `NOT IN`: DuckDB hashes the few new keys and probes the
    outbox, so the cost follows the cohort, not the outbox's history. It probes with a column,
    not the key's expression: correlated on an expression, DuckDB first deduplicates every
    column the expression reads. Both the open rows and
    the finished ones (`outbox_done`) are looked at: a key is never enqueued twice. A key
    names its enrollment, so its row was created after that enrollment entered: finished rows
    older than the cohort's first entry are skipped by row-group statistics, unread."""
    own = (f"o.idempotency_key = {key} AND o.flow_id = {literal(cohort.flow.id)} "
           f"AND o.node_id = {literal(cohort.node.id)}")
    row = cohort.connection.execute(
        "SELECT bool_and(e.entered_at IS NOT NULL), min(e.entered_at) FROM cohort t "
        "LEFT JOIN enrollments e USING (enrollment_id)").fetchone()
    since = (f" AND o.created_at >= CAST({literal(str(row[1]))} AS TIMESTAMP)"
             if row and row[0] and row[1] is not None else "")
    return (f"WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE {own}) "
            f"AND NOT EXISTS (SELECT 1 FROM outbox_done o WHERE {own}{since})")


OUTBOX_COLUMNS = (
    "idempotency_key, flow_id, version, contact_id, node_id, iteration, channel, recipient, "
    "subject, body, html, payload, headers, status, attempts, error, reason, created_at, "
    "not_before, connection, audience, unrendered")


def connection_for(flow: Any, params: Any, channel: str) -> str | None:
    """The connection delivering a node's rows: its own override, a CRM adapter name, else the
    flow's connection for the channel; None means the sandbox."""
    override = getattr(params, "connection", None)
    crm = getattr(params, "crm", "local")
    if override:
        return str(override)
    if channel == "crm" and crm != "local":
        return str(crm)
    return flow.settings.connections.get(channel)


def _enqueue(cohort: Cohort, channel: str, audience: str = "contact") -> None:
    """Insert one outbox row per cohort token whose key is new, rendered set-based where the
    templates allow; rows marked `unrendered` are finished by python-liquid at dispatch."""
    connection = connection_for(cohort.flow, cohort.params, channel)
    spec = message_spec(cohort.flow, cohort.node, cohort.params, connected=connection is not None)
    rendered = fields_sql(spec, column_types(cohort.connection), cohort.flow_params)
    unrendered = any(sql is None for sql in rendered.values())
    value = {target: rendered.get(target) or "NULL" for target in (*TEXT_TARGETS, *JSON_TARGETS)}
    cohort.sql(
        f"""
        INSERT INTO outbox ({OUTBOX_COLUMNS})
        SELECT k.key, t.flow_id, t.version, t.contact_id, t.node_id, t.iteration, ?,
               {value["recipient"]}, {value["subject"]}, {value["body"]}, {value["html"]},
               {value["payload"]}, {value["headers"]}, 'pending', 0, NULL, NULL, ?, ?, ?, ?, ?
        FROM {_unique_tokens(cohort)} t JOIN contacts c USING (contact_id)
             LEFT JOIN enrollments e USING (enrollment_id), LATERAL (SELECT {KEY_SQL} AS key) k
        {_new_keys(cohort, "k.key")}
        """,
        [channel, cohort.now, cohort.now, connection, audience, unrendered],
    )
    _fail_oversized(cohort)


def _fail_oversized(cohort: Cohort) -> None:
    """python-liquid stops at the sandbox's output limit; the SQL renderer has no such stop, so
    a row it rendered past the limit is made dead (`render_failed`) before the transaction
    commits, and its text is never kept."""
    cohort.sql(
        """
        UPDATE outbox SET status = 'dead', reason = 'render_failed', error = ?,
               subject = NULL, body = NULL, html = NULL
        WHERE flow_id = ? AND node_id = ? AND status = 'pending' AND created_at = ?
          AND greatest(length(coalesce(subject, '')), length(coalesce(body, '')),
                       length(coalesce(html, ''))) > ?
        """,
        [f"render failed: the message is over {OUTPUT_LIMIT:,} characters", cohort.flow.id,
         cohort.node.id, cohort.now, OUTPUT_LIMIT],
    )


def _enqueue_once(cohort: Cohort, key: str, channel: str, recipient: str | None) -> None:
    """One row not about a contact (a social post, a batch API call), rendered over the run's
    params now; a template that fails to render is recorded dead with the reason."""
    connection = connection_for(cohort.flow, cohort.params, channel)
    spec = message_spec(cohort.flow, cohort.node, cohort.params, connected=connection is not None)
    try:
        fields = render_fields(spec, None, cohort.flow_params)
        status, error, reason = "pending", None, None
    except TemplateError as failure:
        fields, status, error, reason = {}, "dead", f"render failed: {failure}", "render_failed"
    cohort.sql(
        f"""
        INSERT INTO outbox ({OUTBOX_COLUMNS})
        SELECT ?, ?, ?, NULL, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, 'contact', false
        WHERE NOT EXISTS (SELECT 1 FROM outbox_all o WHERE o.idempotency_key = ?)
        """,
        [key, cohort.flow.id, cohort.flow.version, cohort.node.id, channel,
         recipient if recipient is not None else fields.get("recipient"), fields.get("subject"),
         fields.get("body"), fields.get("html"), fields.get("payload"), fields.get("headers"),
         status, error, reason, cohort.now, cohort.now, connection, key],
    )


@step(actions.EmailSend)
def send_email(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, actions.EmailParams)
    _enqueue(cohort, _channel(cohort), audience=params.resolved_audience())
    cohort.pass_all()


@step(actions.SmsSend, actions.WebPush)
def send_text(cohort: Cohort) -> None:
    """SMS and web push: one row per contact on the type's channel."""
    _enqueue(cohort, _channel(cohort))
    cohort.pass_all()


@step(actions.SocialPost)
def post_social(cohort: Cohort) -> None:
    """One post per network per firing (a tick with contacts passing), not per contact."""
    params = cohort.params
    assert isinstance(params, actions.SocialParams)
    if cohort.size():
        stamp = cohort.now.isoformat()
        for network in params.networks:
            key = f"{cohort.flow.id}:{cohort.flow.version}:{cohort.node.id}:{network}:{stamp}"
            _enqueue_once(cohort, key, _channel(cohort), network)
    cohort.pass_all()


def _request(cohort: Cohort) -> None:
    """HTTP and CRM work goes through the outbox as its own channel (webhook, api, crm), with
    the request rendered per contact; it is never recorded as a sent message."""
    _enqueue(cohort, _channel(cohort))


@step(actions.ApiCall)
def call_api(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, actions.ApiCallParams)
    if params.batch:
        if cohort.size():
            key = f"{cohort.flow.id}:{cohort.flow.version}:{cohort.node.id}:batch:{cohort.now}"
            _enqueue_once(cohort, key, _channel(cohort), None)
    else:
        _request(cohort)
    cohort.pass_all()


@step(integrations.ExternalApi, integrations.WebhookCall)
def call_out(cohort: Cohort) -> None:
    """A request per contact: an enrichment API call or a signed webhook."""
    _request(cohort)
    cohort.pass_all()


class StepError(RuntimeError):
    """A node step that cannot do its work for this cohort (the node's cohort fails)."""


def refuse_protected(cohort: Cohort, names: list[str]) -> None:
    """Run-time guard: no step writes consent, suppression or engine-owned columns, even when
    a flow file bypassed validation (`mawb.protected`)."""
    bad = sorted(name for name in names if is_protected(name))
    if bad:
        raise StepError(f"node {cohort.node.id}: {protected_message(bad[0])}"
                        + (f" (also {', '.join(bad[1:])})" if bad[1:] else ""))


def _set_attributes(cohort: Cohort, values: Mapping[str, object]) -> None:
    if not values:
        return
    refuse_protected(cohort, list(values))
    assignments = ", ".join(f"{quote(name)} = {literal(value)}" for name, value in values.items())
    cohort.sql(
        f"UPDATE contacts SET {assignments} "
        "WHERE contact_id IN (SELECT contact_id FROM cohort)"
    )


@step(actions.DataUpdate)
def update_data(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, actions.DataUpdateParams)
    refuse_protected(cohort, [*params.set, *params.increment])
    _set_attributes(cohort, dict(params.set))
    if params.increment:
        # Each token passing counts once (two parallel paths through the node count twice).
        assignments = ", ".join(
            f"{quote(name)} = coalesce(contacts.{quote(name)}, 0) + n.passes * {literal(amount)}"
            for name, amount in params.increment.items()
        )
        cohort.sql(
            f"UPDATE contacts SET {assignments} FROM "
            "(SELECT contact_id, count(*) AS passes FROM cohort GROUP BY contact_id) n "
            "WHERE contacts.contact_id = n.contact_id"
        )
    cohort.pass_all()


def _crm_local(cohort: Cohort, params: integrations.CrmUpdateParams, create: bool) -> None:
    columns = _columns(cohort)
    pieces = []
    for name, value in params.fields.items():
        rendered = (_text_sql(cohort, value, columns) if isinstance(value, str) and "{{" in value
                    else literal(value))
        pieces.append(f"{literal(name)}, {rendered}")
    fields = f"json_object({', '.join(pieces)})"
    key = f"'{params.object}:' || t.contact_id" if not create else KEY_SQL
    cohort.sql(
        f"""
        INSERT INTO crm_records
        SELECT DISTINCT ON (rk) rk, contact_id, ?, fields, ?, ? FROM (
            SELECT {key} AS rk, t.contact_id, {fields} AS fields
            FROM cohort t JOIN contacts c USING (contact_id)
                 LEFT JOIN enrollments e USING (enrollment_id))
        WHERE rk NOT IN (SELECT record_key FROM crm_records)
        """,
        [params.object, cohort.now, cohort.now],
    )
    if not create:
        cohort.sql(
            f"""
            UPDATE crm_records SET fields = json_merge_patch(crm_records.fields, s.fields),
                   updated_at = ?
            FROM (SELECT DISTINCT ON (t.contact_id) '{params.object}:' || t.contact_id AS rk,
                         {fields} AS fields
                  FROM cohort t JOIN contacts c USING (contact_id)) s
            WHERE crm_records.record_key = s.rk
            """,
            [cohort.now],
        )
    _mirror(cohort, params)


def _mirror(cohort: Cohort, params: integrations.CrmUpdateParams) -> None:
    """`mirror_attributes`: the fields' plain values also become contact attributes, whichever
    CRM receives the record (the local table or a connection)."""
    if params.mirror_attributes:
        plain = {k: v for k, v in params.fields.items() if not (isinstance(v, str) and "{{" in v)}
        _set_attributes(cohort, plain)


@step(integrations.CrmUpdate)
def update_crm(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, integrations.CrmUpdateParams)
    if params.crm == "local":
        _crm_local(cohort, params, create=False)
    else:
        _request(cohort)
        _mirror(cohort, params)
    cohort.pass_all()


@step(integrations.CrmCreate)
def create_crm(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, integrations.CrmCreateParams)
    if params.crm == "local":
        _crm_local(cohort, params, create=True)
    else:
        _request(cohort)
        _mirror(cohort, params)
    cohort.pass_all()


@step(integrations.DatabaseQuery)
def query_database(cohort: Cohort) -> None:
    """Run the author's read-only query in the sandbox (`mawb.query`) and copy columns.

    The query is checked again here, not only when the flow was validated: a flow file saved
    by an older mawb, or edited by hand, gets the same proof before anything runs."""
    params = cohort.params
    assert isinstance(params, integrations.DatabaseQueryParams)
    if cohort.size():
        result = run_query(cohort.connection, check_query(params.sql))
        if "contact_id" not in result.column_names:
            raise StepError(f"node {cohort.node.id}: the query returned no contact_id column")
        cohort.connection.register("enrichment_rows", result)
        cohort.sql("CREATE OR REPLACE TEMP TABLE enrichment AS SELECT * FROM enrichment_rows")
        cohort.connection.unregister("enrichment_rows")
        rows = cohort.connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'enrichment' AND column_name <> 'contact_id'"
        ).fetchall()
        wanted = [(n, t) for n, t in rows if not params.columns or n in params.columns]
        refuse_protected(cohort, [n for n, _ in wanted])
        for name, dtype in wanted:
            cohort.sql(f"ALTER TABLE contacts ADD COLUMN IF NOT EXISTS {quote(name)} {dtype}")
        if wanted:
            assignments = ", ".join(f"{quote(n)} = q.{quote(n)}" for n, _ in wanted)
            cohort.sql(
                f"UPDATE contacts SET {assignments} FROM enrichment q "
                "WHERE contacts.contact_id = q.contact_id "
                "AND contacts.contact_id IN (SELECT contact_id FROM cohort)"
            )
    cohort.pass_all()


@step(actions.DelayAction)
def delay(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, actions.DelayParams)
    base = f"t.arrived_at + to_microseconds(CAST({literal(int(params.seconds() * 1e6))} AS BIGINT))"
    if params.until_field:
        offset = int(params.offset_days * 86400 * 1e6)
        base = (f"coalesce(TRY_CAST(c.{quote(params.until_field)} AS TIMESTAMP) "
                f"+ to_microseconds(CAST({literal(offset)} AS BIGINT)), t.arrived_at)")
    if params.at_local_time:
        base = next_local_time(cohort, base, params.at_local_time)
    cohort.decide(
        f"""
        SELECT t.token_id,
               CASE WHEN t.state = 'waiting' OR w.until <= ? THEN ? END,
               w.until, NULL, NULL
        FROM cohort t JOIN contacts c USING (contact_id),
             LATERAL (SELECT {base} AS until) w
        """,
        [cohort.now, SINGLE],
    )


def timezone_sql(cohort: Cohort) -> str:
    """The contact's timezone when it is a valid IANA name, else the flow's."""
    fallback = literal(cohort.flow.settings.timezone)
    if "timezone" not in _columns(cohort):
        return fallback
    return (f"coalesce(CASE WHEN c.timezone IN (SELECT name FROM pg_timezone_names()) "
            f"THEN c.timezone END, {fallback})")


def next_local_time(cohort: Cohort, base: str, clock: str) -> str:
    """SQL for the first HH:MM in the contact's timezone strictly after `base` (UTC)."""
    hours, minutes = (int(part) for part in clock.split(":"))
    zone = timezone_sql(cohort)
    local = f"timezone({zone}, CAST({base} AS TIMESTAMP) AT TIME ZONE 'UTC')"
    candidate = f"(date_trunc('day', {local}) + INTERVAL {hours * 60 + minutes} MINUTE)"
    chosen = (f"CASE WHEN {candidate} <= {local} THEN {candidate} + INTERVAL 1 DAY "
              f"ELSE {candidate} END")
    return f"timezone('UTC', timezone({zone}, {chosen}))"


@step(actions.ConditionCheck)
def check_condition(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, actions.ConditionCheckParams)
    timeout = int(params.timeout_days * 86400 * 1e6)
    deadline = f"coalesce(t.deadline, t.arrived_at + to_microseconds(CAST({timeout} AS BIGINT)))"
    cohort.decide(
        f"""
        SELECT t.token_id,
               CASE WHEN coalesce(({cohort.condition(params.condition)}), false) THEN 'met'
                    WHEN {deadline} <= ? THEN 'timeout' END,
               {deadline}, {deadline}, NULL
        FROM cohort t JOIN contacts c USING (contact_id)
        """,
        [cohort.now],
    )


@step(logic.IfCondition)
def branch_if(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, logic.IfParams)
    cohort.decide(
        f"""
        SELECT t.token_id,
               CASE WHEN coalesce(({cohort.condition(params.condition)}), false)
                    THEN 'true' ELSE 'false' END, NULL, NULL, NULL
        FROM cohort t JOIN contacts c USING (contact_id)
        """
    )


@step(logic.SwitchCase)
def branch_switch(cohort: Cohort) -> None:
    params = cohort.params
    assert isinstance(params, logic.SwitchParams)
    whens = " ".join(
        f"WHEN coalesce(({cohort.condition(case.condition)}), false) THEN {literal(case.name)}"
        for case in params.cases
    )
    cohort.decide(
        f"SELECT t.token_id, CASE {whens} ELSE 'default' END, NULL, NULL, NULL "
        "FROM cohort t JOIN contacts c USING (contact_id)"
    )


@step(logic.LoopIterator)
def loop(cohort: Cohort) -> None:
    """Count passes: arriving by a back-edge is the next iteration, otherwise the first."""
    params = cohort.params
    assert isinstance(params, logic.LoopParams)
    returning = sorted(plan(cohort.flow).returning.get(cohort.node.id, ())) or [""]
    sources = ", ".join(literal(s) for s in returning)
    until = f"coalesce(({cohort.condition(params.until)}), false)" if params.until else "false"
    cohort.decide(
        f"""
        SELECT token_id, CASE WHEN done THEN 'done' ELSE 'body' END, NULL, NULL,
               CASE WHEN done THEN 0 ELSE pass END
        FROM (
            SELECT t.token_id, p.pass, (p.pass > {int(params.max_iterations)} OR {until}) AS done
            FROM cohort t JOIN contacts c USING (contact_id),
                 LATERAL (SELECT CASE WHEN t.via IN ({sources})
                                      THEN coalesce(t.iteration, 0) + 1 ELSE 1 END AS pass) p)
        """
    )


@step(logic.ParallelExecution)
def fan_out(cohort: Cohort) -> None:
    cohort.pass_all()


@step(logic.MergeBranches)
def merge(cohort: Cohort) -> None:
    """`all`: one token continues once every incoming source delivered; `any`: the first."""
    params = cohort.params
    assert isinstance(params, logic.MergeParams)
    if params.mode == "all":
        needed = len({edge.source for edge in cohort.flow.incoming(cohort.node.id)})
        ready = f"count(DISTINCT via) OVER (PARTITION BY enrollment_id) >= {needed}"
    else:
        ready = "true"
    cohort.decide(
        f"""
        SELECT token_id,
               CASE WHEN NOT ready THEN NULL
                    WHEN first AND NOT already THEN ? ELSE 'joined' END,
               NULL, NULL, NULL
        FROM (
            SELECT t.token_id, {ready} AS ready,
                   t.token_id = min(t.token_id) OVER (PARTITION BY t.enrollment_id) AS first,
                   EXISTS (SELECT 1 FROM merge_passed m WHERE m.enrollment_id = t.enrollment_id
                           AND m.node_id = t.node_id) AS already
            FROM cohort t)
        """,
        [SINGLE],
    )
    # Remember who went through, with the tokens rather than in the audit log.
    cohort.sql(
        "INSERT INTO merge_passed SELECT DISTINCT c.flow_id, c.enrollment_id, c.contact_id, "
        "c.node_id FROM decision d JOIN cohort c USING (token_id) WHERE d.branch = ?",
        [SINGLE],
    )
