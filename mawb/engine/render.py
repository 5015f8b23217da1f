"""One renderer for every message field: set-based in SQL when it can be, python-liquid otherwise.

Rendering a million emails one by one in Python would dominate a tick, so templates made only
of text and `{{ name }}` / `{{ name | default: 'x' }}` outputs (the vast majority of marketing
copy) become one DuckDB string expression, built with sqlglot, rendered for the whole cohort in
SQL. A name that is a contact column reads the column; a name that is a flow param is inlined
as a literal holding exactly what Liquid prints for the run's value of it. Anything richer
(filters, tags, columns whose text form differs between DuckDB and Python) returns None and is
rendered by python-liquid at dispatch with the same context (`render_fields`). The two paths
produce the same text; a property test compares them on random templates, contacts and params.

A message node's fields are described once (`message_spec`): a nested mapping from outbox
column (and payload key) to a `Template`, a contact `Attribute`, or a fixed `Fixed` value. Both
paths walk that one description, so a field added to a node is rendered by both or neither.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from mawb import nodes
from mawb.nodes.base import Message
from mawb.personalize import check_template, render

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import duckdb

    from mawb.model import Flow, Node

_OUTPUT = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_SIMPLE = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\s*\|\s*default:\s*(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"))?$"
)
# Column types whose DuckDB VARCHAR cast is exactly what Liquid prints for the Python value.
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT"}
_TEXT_TYPES = {"VARCHAR", "DOUBLE", *_INTEGERS}


def column_types(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Contact column name -> DuckDB type name (cheap: a LIMIT 0 description)."""
    description = connection.execute("SELECT * FROM main.contacts LIMIT 0").description
    return {column[0]: str(column[1]) for column in description or []}


def liquid_to_sql(template: str, columns: Mapping[str, str] | set[str], alias: str = "c",
                  params: Mapping[str, Any] | None = None) -> str | None:
    """DuckDB SQL rendering `template` per row of `alias`, or None when it is not simple.

    `columns` maps contact columns to their DuckDB types (a plain set means VARCHAR);
    `params` are the run's flow params, inlined as literals of Liquid's own output."""
    if "{%" in template or check_template(template) is not None:
        return None
    types = columns if not isinstance(columns, set) else dict.fromkeys(columns, "VARCHAR")
    template = template.replace("\r\n", "\n").replace("\r", "\n")  # as Liquid reads it
    parts: list[exp.Expr] = []
    position = 0
    for match in _OUTPUT.finditer(template):
        if match.group(1) or match.group(3):
            return None  # whitespace control trims the text around it: leave it to Liquid
        if match.start() > position:
            parts.append(exp.Literal.string(template[position : match.start()]))
        value = _output_sql(match.group(2), match.group(0), types, alias, params or {})
        if value is None:
            return None
        parts.append(value)
        position = match.end()
    if position < len(template):
        parts.append(exp.Literal.string(template[position:]))
    if not parts:
        return exp.Literal.string("").sql("duckdb")
    if len(parts) == 1:
        return parts[0].sql("duckdb")
    return exp.Concat(expressions=parts, safe=True).sql("duckdb")


def _output_sql(inner: str, whole: str, types: Mapping[str, str], alias: str,
                params: Mapping[str, Any]) -> exp.Expr | None:
    simple = _SIMPLE.match(inner)
    if simple is None:
        return None
    name = simple.group("name")
    default = simple.group("single")
    if default is None:
        default = simple.group("double")
    if name not in types:
        if name in params:  # Liquid itself says what the param prints as
            return exp.Literal.string(render(whole, {name: params[name]}))
        return exp.Literal.string(default or "")
    column = exp.column(name, table=alias, quoted=True)
    dtype = types[name]
    if dtype == "BOOLEAN":
        # Liquid prints true/false; `default` replaces false as well as nil.
        if default is not None:
            return exp.func("coalesce", exp.Case(ifs=[exp.If(
                this=column, true=exp.Literal.string("true"))]), exp.Literal.string(default))
        value: exp.Expr = exp.cast(column, "VARCHAR")
    elif dtype in _TEXT_TYPES:
        value = exp.cast(column, "VARCHAR")
        if default is not None:
            value = exp.func("coalesce", exp.func("nullif", value, exp.Literal.string("")),
                             exp.Literal.string(default))
    else:
        return None  # dates, JSON, decimals, floats: printed by Python, not DuckDB
    return exp.func("coalesce", value, exp.Literal.string(""))


# -- what a message node renders -----------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """A Liquid template over contact attributes and flow params."""

    text: str


@dataclass(frozen=True)
class Attribute:
    """A contact attribute as it is (typed in JSON payloads, text in text columns)."""

    name: str


@dataclass(frozen=True)
class Fixed:
    """A value that is the same for every contact."""

    value: Any


Spec = dict[str, Any]  # outbox column -> Template | Attribute | Fixed | nested dict (JSON)
TEXT_TARGETS = ("recipient", "subject", "body", "html")
JSON_TARGETS = ("payload", "headers")


def render_fields(spec: Spec, contact: Mapping[str, Any] | None,
                  params: Mapping[str, Any]) -> dict[str, str | None]:
    """Every outbox column of `spec` rendered in Python (raises TemplateError)."""
    context = {**params, **(contact or {})}
    rendered: dict[str, str | None] = {}
    for target, value in spec.items():
        if target in JSON_TARGETS:
            rendered[target] = json.dumps(_python_value(value, contact, context),
                                          default=str, separators=(",", ":"))
        else:
            text = _python_value(value, contact, context)
            rendered[target] = None if text is None else str(text)
    return rendered


def _python_value(value: Any, contact: Mapping[str, Any] | None,
                  context: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _python_value(item, contact, context) for key, item in value.items()}
    if isinstance(value, Template):
        return render(value.text, context)
    if isinstance(value, Attribute):
        return None if contact is None else contact.get(value.name)
    return value.value


def fields_sql(spec: Spec, columns: Mapping[str, str], params: Mapping[str, Any],
               alias: str = "c") -> dict[str, str | None]:
    """Outbox column -> SQL rendering it set-based, or None where Python must render it."""
    return {target: _sql_value(value, columns, params, alias, text=target not in JSON_TARGETS)
            for target, value in spec.items()}


def _sql_value(value: Any, columns: Mapping[str, str], params: Mapping[str, Any], alias: str,
               text: bool) -> str | None:
    if isinstance(value, dict):
        pieces = []
        for key, item in value.items():
            sql = _sql_value(item, columns, params, alias, text=False)
            if sql is None:
                return None
            pieces += [exp.Literal.string(key).sql("duckdb"), sql]
        return f"json_object({', '.join(pieces)})"
    if isinstance(value, Template):
        return liquid_to_sql(value.text, columns, alias, params)
    if isinstance(value, Attribute):
        if value.name not in columns:
            return "NULL"
        column = exp.column(value.name, table=alias, quoted=True)
        return (exp.cast(column, "VARCHAR") if text else column).sql("duckdb")
    if text:
        return "NULL" if value.value is None else exp.convert(str(value.value)).sql("duckdb")
    return (f"CAST({exp.convert(json.dumps(value.value, default=str)).sql('duckdb')} AS JSON)")


def message_spec(flow: Flow, node: Node, params: Any, *, connected: bool = False) -> Spec:
    """The outbox columns a message or request node fills, as templates/attributes/values.

    `params` is the node's parsed params model; `connected` says whether the row goes to a
    real provider (web push then addresses the contact's stored subscription). What the row
    holds is the node type's `message`."""
    kind = nodes.get(node.type).message if nodes.has(node.type) else None
    build = _SPECS.get(kind) if kind is not None else None
    if build is None:
        raise ValueError(f"node {node.id}: {node.type} sends nothing")
    return build(flow, node, params, connected)


def _email(flow: Flow, node: Node, params: Any, connected: bool) -> Spec:
    recipient = Template(params.to) if params.to else Attribute("email")
    spec: Spec = {"recipient": recipient, "subject": Template(params.subject),
                  "body": Template(params.body)}
    if getattr(params, "html", None):
        spec["html"] = Template(params.html)
    if params.preheader:
        spec["payload"] = {"preheader": Template(params.preheader)}
    return spec


def _sms(flow: Flow, node: Node, params: Any, connected: bool) -> Spec:
    return {"recipient": Attribute("phone"), "body": Template(params.body)}


def _push(flow: Flow, node: Node, params: Any, connected: bool) -> Spec:
    spec: Spec = {"recipient": Attribute("push_subscription") if connected
                  else Attribute("contact_id"),
                  "subject": Template(params.title), "body": Template(params.body)}
    if params.url:
        spec["payload"] = {"url": Template(params.url)}
    return spec


def _request(flow: Flow, node: Node, params: Any, connected: bool) -> Spec:
    request: dict[str, Any] = {
        "method": Fixed(params.method), "url": Template(params.url),
        "headers": {name: Template(value) for name, value in params.headers.items()},
        "store": Fixed(dict(params.store))}
    if getattr(params, "body", None):
        request["body"] = Template(params.body)
    if getattr(params, "cache_hours", 0):
        request["cache_hours"] = Fixed(params.cache_hours)
    return {"payload": request}


def _webhook(flow: Flow, node: Node, params: Any, connected: bool) -> Spec:
    body = {"event": Fixed(params.event), "flow": Fixed(flow.id),
            "version": Fixed(flow.version), "node": Fixed(node.id),
            "contact_id": Attribute("contact_id"),
            "data": {name: Attribute(name) for name in params.include}}
    return {"payload": {"url": Fixed(params.url), "secret": Fixed(params.secret),
                        "body": body}}


def _crm(operation: str) -> Callable[[Flow, Node, Any, bool], Spec]:
    def build(flow: Flow, node: Node, params: Any, connected: bool) -> Spec:
        properties = {name: Template(value) if isinstance(value, str) else Fixed(value)
                      for name, value in params.fields.items()}
        return {"recipient": Attribute("email"),
                "payload": {"operation": Fixed(operation), "object": Fixed(params.object),
                            "properties": properties}}

    return build


def _social(flow: Flow, node: Node, params: Any, connected: bool) -> Spec:
    spec: Spec = {"recipient": Fixed(None), "body": Template(params.text)}
    if params.link:
        spec["payload"] = {"link": Template(params.link)}
    return spec


_SPECS: dict[Message, Callable[[Flow, Node, Any, bool], Spec]] = {
    Message.EMAIL: _email, Message.SMS: _sms, Message.PUSH: _push, Message.SOCIAL: _social,
    Message.REQUEST: _request, Message.WEBHOOK: _webhook,
    Message.CRM_UPDATE: _crm("update"), Message.CRM_CREATE: _crm("create"),
}
