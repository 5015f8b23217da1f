"""The flow file format: pydantic models for Flow, Node, Edge and Settings.

This module is the contract every other layer reads. It knows nothing about node types,
conditions or the engine: it checks the *shape* of a flow file, while `mawb.validate` checks
its *meaning* and reports diagnostics. Layout (`ui`) is kept apart from behaviour.

Files are JSON (or YAML) with a `schema_version`; `migrate` upgrades older documents one
version at a time through the functions in `MIGRATIONS`, so a saved file never silently
changes meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = 1
MAX_VERSION = 2**31 - 1  # versions are stored as INTEGER
MAX_NODES = 1000
MAX_EDGES = 5000
MAX_FLOW_FILE_BYTES = 5_000_000
BIGINT_MAX = 2**63 - 1

# A migration takes a document of version N and returns one of version N + 1.
Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}

ParamValue = bool | int | float | str


class FlowFileError(ValueError):
    """A flow file that cannot be read or does not have the flow shape.

    `where` names the place (line and column for syntax errors, a field path for shape errors).
    """

    def __init__(self, source: str, message: str, where: str | None = None) -> None:
        self.source = source
        self.where = where
        self.detail = message
        location = f"{source}:{where}" if where else source
        super().__init__(f"{location}: {message}")


class _Strict(BaseModel):
    # Floats must be finite everywhere in a flow file: inf/nan have no JSON form and break SQL.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Reentry(StrEnum):
    """When a contact that already went through the flow may enter it again."""

    NEVER = "never"
    AFTER_EXIT = "after_exit"
    ALWAYS = "always"


class CapMode(StrEnum):
    """What the outbox does with a message over the frequency cap."""

    HOLD = "hold"  # defer until the window has room again
    SKIP = "skip"  # drop the message (recorded as skipped) and move on


_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# The channel vocabulary, defined once. Contact channels reach a contact's own address, so
# consent, suppressions and frequency caps apply; message channels are the sends recorded as
# messages; webhook, api and crm rows are requests, kept in the outbox only.
CONTACT_CHANNELS = ("email", "sms", "web_push")
MESSAGE_CHANNELS = (*CONTACT_CHANNELS, "social")
CONSENT_COLUMNS = {"email": "email_consent", "sms": "sms_consent", "web_push": "push_consent"}
# Outbox channels a connection can deliver (docs/architecture.md section 4).
DELIVERY_CHANNELS = (*MESSAGE_CHANNELS, "webhook", "api", "crm")
_CONNECTION_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class QuietHours(_Strict):
    """Local-time window in which sends are deferred (not dropped) until `end`."""

    start: str = Field(description="Start of the quiet window, HH:MM in the contact's timezone")
    end: str = Field(description="End of the quiet window, HH:MM; may be earlier than start")

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"expected HH:MM (24 h), got {value!r}")
        return value


class FrequencyCap(_Strict):
    """At most `max_messages` messages per contact in any `per_days` window, across channels."""

    max_messages: int = Field(ge=1, le=1_000_000, description="Messages allowed in the window")
    per_days: int = Field(ge=1, le=365, description="Length of the sliding window in days")
    mode: CapMode = Field(CapMode.HOLD, description="hold: defer the message; skip: drop it")


class Settings(_Strict):
    """Flow-wide behaviour: timezone, re-entry, goal, quiet hours, frequency cap, tick."""

    timezone: str = Field("UTC", description="IANA timezone used when a contact has none")
    reentry: Reentry = Field(Reentry.NEVER, description="Whether contacts may enter again")
    goal: str | None = Field(
        None, description="Condition; a contact that meets it leaves the flow as converted"
    )
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    tick: str = Field(
        "15m", description="How often the flow advances on the real clock (e.g. 5m, 1h, 1d)"
    )
    connections: dict[str, str] = Field(
        default_factory=dict,
        description="Channel -> named connection (connections.yaml) that delivers it, e.g. "
        "{\"email\": \"mail\"}; a channel without one stays in the sandbox",
    )

    @field_validator("connections")
    @classmethod
    def _known_channels(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, name in value.items():
            if channel not in DELIVERY_CHANNELS:
                raise ValueError(f"connections.{channel}: unknown channel; expected one of "
                                 f"{', '.join(DELIVERY_CHANNELS)}")
            if not _CONNECTION_NAME.match(name):
                raise ValueError(f"connections.{channel}: {name!r} is not a connection name "
                                 "(lowercase letters, digits, - and _)")
        return value


class Node(_Strict):
    """One step of the flow. `type` names a registered node type; `params` its settings."""

    id: str = Field(description="Stable slug, unique in the flow")
    type: str = Field(description="Registered node type, e.g. email_send")
    label: str | None = Field(None, description="Display name; defaults to the type's label")
    params: dict[str, Any] = Field(default_factory=dict)


class Edge(_Strict):
    """A transition. `branch` names the source's output (true/false, met/timeout, ...)."""

    source: str
    target: str
    branch: str | None = None


class Layout(_Strict):
    """Canvas layout only; never changes behaviour."""

    positions: dict[str, tuple[float, float]] = Field(default_factory=dict)


class Metadata(_Strict):
    """Gallery information: what the flow is for and how long a contact spends in it."""

    category: str = "general"
    duration_days: int | None = Field(None, ge=0, le=36500)
    tags: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)


class Flow(_Strict):
    """A marketing automation flow: the whole file format (docs/architecture.md)."""

    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="Stable slug of the flow")
    name: str = ""
    description: str = ""
    version: int = Field(1, ge=1, le=MAX_VERSION)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    settings: Settings = Field(default_factory=Settings)
    metadata: Metadata = Field(default_factory=Metadata)
    nodes: list[Node] = Field(default_factory=list, max_length=MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=MAX_EDGES)
    ui: Layout = Field(default_factory=Layout)

    @field_validator("params")
    @classmethod
    def _sql_sized_params(cls, value: dict[str, ParamValue]) -> dict[str, ParamValue]:
        for name, item in value.items():
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > BIGINT_MAX:
                raise ValueError(f"param {name}: {item} is outside the range of a 64-bit "
                                 "whole number")
        return value

    # -- lookups ---------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        """The node with this id (KeyError if absent)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def outgoing(self, node_id: str) -> list[Edge]:
        return [edge for edge in self.edges if edge.source == node_id]

    def incoming(self, node_id: str) -> list[Edge]:
        return [edge for edge in self.edges if edge.target == node_id]

    # -- builder API (notebooks build flows in code) ----------------------------------------
    @classmethod
    def new(cls, id: str, name: str = "", **fields: Any) -> Self:
        """Start an empty flow: `Flow.new("welcome").add("start", "manual_trigger")...`."""
        return cls(id=id, name=name or id, **fields)

    def add(self, node_id: str, node_type: str, label: str | None = None, **params: Any) -> Self:
        """Append a node and return the flow, so calls chain."""
        self.nodes.append(Node(id=node_id, type=node_type, label=label, params=params))
        return self

    def connect(self, source: str, target: str, branch: str | None = None) -> Self:
        """Append an edge and return the flow, so calls chain."""
        self.edges.append(Edge(source=source, target=target, branch=branch))
        return self

    # BaseModel.validate is pydantic v1's deprecated classmethod; `flow.validate()` is the
    # notebook API (docs, README), so it keeps the name.
    def validate(  # type: ignore[override]
            self, columns: set[str] | None = None) -> Any:  # -> mawb.validate.Report
        """Run every check of `mawb.validate` and return its report."""
        from mawb.validate import validate_flow  # upward on purpose: a convenience for users

        return validate_flow(self, columns=columns)

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the flow atomically (JSON, or YAML for .yaml/.yml paths)."""
        path = Path(path)
        text = self.to_json()
        if path.suffix in {".yaml", ".yml"}:
            text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path

    def _repr_html_(self) -> str:
        from mawb.display import flow_html  # notebooks only

        return flow_html(self)


def migrate(document: dict[str, Any], source: str = "<flow>") -> dict[str, Any]:
    """Upgrade a raw flow document to SCHEMA_VERSION, one registered step at a time.

    A top-level `$schema` (an editor's pointer to `mawb schema`) is not part of the flow and
    is dropped here."""
    document = {key: value for key, value in document.items() if key != "$schema"}
    version = document.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise FlowFileError(source, f"schema_version must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise FlowFileError(
            source,
            f"schema_version {version} is newer than this mawb supports ({SCHEMA_VERSION}); "
            "upgrade mawb",
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise FlowFileError(source, f"no migration from schema_version {version}")
        document = step(dict(document))
        version += 1
        document["schema_version"] = version
    return document


def parse_text(text: str, source: str = "<flow>", fmt: str | None = None) -> dict[str, Any]:
    """Parse JSON or YAML text into a document, naming the line of a syntax error."""
    fmt = fmt or ("yaml" if source.endswith((".yaml", ".yml")) else "json")
    try:
        if fmt == "yaml":
            document = yaml.safe_load(text)
        else:
            document = json.loads(text)
    except json.JSONDecodeError as error:
        raise FlowFileError(source, error.msg, f"{error.lineno}:{error.colno}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else None
        problem = getattr(error, "problem", None) or str(error)
        raise FlowFileError(source, f"invalid YAML: {problem}", where) from None
    except (ValueError, RecursionError) as error:
        # Values the parsers reject after tokenising: a YAML date like 2024-02-30, an integer
        # over Python's digit limit, nesting deeper than the recursion limit.
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise FlowFileError(source, f"invalid {fmt.upper()}: {reason}") from None
    if not isinstance(document, dict):
        raise FlowFileError(source, "a flow file must contain an object at the top level")
    return document


def read_document(path: str | Path) -> dict[str, Any]:
    """Read a flow file into a migrated raw document (no shape check yet)."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_FLOW_FILE_BYTES:
            raise FlowFileError(str(path), f"file is larger than {MAX_FLOW_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FlowFileError(str(path), f"cannot read file: {error}") from None
    return migrate(parse_text(text, str(path)), str(path))


def error_location(document: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str | None, str]:
    """Map a pydantic error location to (node id, field path) for diagnostics."""
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        nodes = document.get("nodes")
        node_id = None
        if isinstance(nodes, list) and loc[1] < len(nodes) and isinstance(nodes[loc[1]], dict):
            raw_id = nodes[loc[1]].get("id")
            node_id = raw_id if isinstance(raw_id, str) else None
        field = ".".join(str(part) for part in loc[2:]) or "node"
        return node_id or f"nodes[{loc[1]}]", field
    return None, ".".join(str(part) for part in loc) or "flow"


def from_document(document: dict[str, Any], source: str = "<flow>") -> Flow:
    """Build a Flow from a raw document, raising FlowFileError that names the first bad field."""
    try:
        return Flow.model_validate(migrate(document, source))
    except ValidationError as error:
        first = error.errors()[0]
        node_id, field = error_location(document, tuple(first["loc"]))
        where = f"node {node_id!r} field {field}" if node_id else field
        raise FlowFileError(source, f"{where}: {first['msg']}") from None


def load(path: str | Path) -> Flow:
    """Load a flow file (JSON or YAML). Raises FlowFileError naming file and place."""
    return from_document(read_document(path), str(path))


def loads(text: str, fmt: str = "json") -> Flow:
    """Load a flow from JSON/YAML text."""
    return from_document(migrate(parse_text(text, "<text>", fmt)), "<text>")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the flow file format (what `mawb schema` prints)."""
    schema = Flow.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mawb flow"
    schema["properties"]["$schema"] = {
        "type": "string", "description": "Where editors find this schema (ignored by mawb)"}
    return schema
