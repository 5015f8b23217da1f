"""What every node type declares: params model, outputs, behaviour flags, UI metadata.

A node type is a class, registered by name in `mawb.nodes.registry`. The class carries
everything the rest of mawb needs to know about the type without special cases elsewhere:
the pydantic model of its params (defaults and field descriptions feed the config panel),
the names of its output branches, which params are SQL conditions or Liquid templates (so
the validator checks them), its category, label, icon and help text, a one-line summary
for the canvas, and what the engine, compiler and UI ask of it: whether it is a trigger and
of which kind, a loop or a merge, whether it looks at every waiting token each tick, which
outbox channel its rows go to and what kind of message it renders. No other module compares
type names: they ask the class. A type name is looked up only in the registry.

How a cohort of contacts moves through the node lives in the engine (`mawb.engine.steps`,
triggers in `mawb.engine.enroll`), keyed by the class itself, not by its name; a test fails
when a registered type has no step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator

# Secrets are never stored in flow files, only named: an environment variable, a mounted file or
# an Airflow/Kubernetes connection resolved by whoever sends.
SECRET_REF = r"^(env|file|connection):[A-Za-z0-9_./-]+$"  # noqa: S105 - a pattern, not a secret
SECRET_HELP = "Reference to a secret (env:NAME, file:PATH, connection:ID); never the value"  # noqa: S105

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping


class Category(StrEnum):
    TRIGGER = "trigger"
    ACTION = "action"
    LOGIC = "logic"
    INTEGRATION = "integration"


# One colour per category, used alike by the canvas, the gallery, notebooks and charts.
CATEGORY_COLORS: dict[Category, str] = {
    Category.TRIGGER: "#16a34a",
    Category.ACTION: "#2563eb",
    Category.LOGIC: "#d97706",
    Category.INTEGRATION: "#7c3aed",
}


class TriggerKind(StrEnum):
    """How a trigger finds the contacts it enrolls."""

    TIME = "time"  # an audience on a schedule or relative to a date attribute
    BEHAVIORAL = "behavioral"  # a count of behaviour events within a window
    EVENT = "event"  # a named business event
    WEBHOOK = "webhook"  # an authenticated HTTP call to the flow's endpoint
    MANUAL = "manual"  # an explicit list (CLI, API, upload)


class Message(StrEnum):
    """What an outbox row of a sending node holds (`mawb.engine.render` builds each)."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    SOCIAL = "social"
    REQUEST = "request"  # an HTTP request whose response may be stored on the contact
    WEBHOOK = "webhook"  # a signed JSON POST about the contact
    CRM_UPDATE = "crm_update"
    CRM_CREATE = "crm_create"


class Outputs(StrEnum):
    """How a node's outgoing edges are labelled."""

    SINGLE = "single"  # at most one edge, no branch label
    BRANCHES = "branches"  # one edge per named branch (true/false, met/timeout, cases...)
    FANOUT = "fanout"  # any number of edges, every one taken (parallel execution)


BIGINT_MAX = 2**63 - 1


class Params(BaseModel):
    """Base of every params model: unknown keys are errors, so typos surface.

    Numbers must be usable in SQL: floats finite (no inf/nan), whole numbers within BIGINT,
    wherever they sit (a dict of increments, a list), so nothing validates that overflows at
    run time."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _sql_sized(cls, value: Any) -> Any:
        check_sql_number(value)
        return value


def check_sql_number(value: Any) -> None:
    """Raise ValueError for a whole number outside BIGINT anywhere inside `value`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > BIGINT_MAX:
            raise ValueError(f"{item} is outside the range of a 64-bit whole number")


class NodeType:
    """Base class of node types. Subclasses set the class attributes below."""

    type: ClassVar[str]
    category: ClassVar[Category]
    label: ClassVar[str]
    icon: ClassVar[str]  # name of a bundled SVG icon
    help: ClassVar[str]
    params_model: ClassVar[builtins.type[Params]]  # `type` is the attribute above
    outputs: ClassVar[Outputs] = Outputs.SINGLE
    fixed_branches: ClassVar[tuple[str, ...]] = ()
    channel: ClassVar[str | None] = None  # delivery family of actions that send (palette)
    outbox_channel: ClassVar[str | None] = None  # `outbox.channel` of the rows it enqueues
    message: ClassVar[Message | None] = None  # what those rows hold (None: sends nothing)
    trigger_kind: ClassVar[TriggerKind | None] = None  # set on every trigger
    is_loop: ClassVar[bool] = False  # its `body` branch may lead back to it (back-edges)
    is_merge: ClassVar[bool] = False  # joins paths: needs two or more incoming edges
    every_tick: ClassVar[bool] = False  # its step looks at every waiting token each tick
    condition_fields: ClassVar[tuple[str, ...]] = ()  # params that are SQL conditions
    template_fields: ClassVar[tuple[str, ...]] = ()  # params that are Liquid templates
    event_condition_fields: ClassVar[tuple[str, ...]] = ()  # conditions over event properties

    @classmethod
    def is_trigger(cls) -> bool:
        """Triggers enroll contacts and have no input."""
        return cls.category is Category.TRIGGER

    @classmethod
    def listens_to_events(cls) -> bool:
        """Whether the trigger enrolls from arriving events (so a DAG may run on them)."""
        return cls.trigger_kind in (TriggerKind.EVENT, TriggerKind.WEBHOOK)

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> Params:
        """Validate raw params into the params model (raises pydantic.ValidationError)."""
        return cls.params_model.model_validate(dict(params))

    @classmethod
    def branches(cls, params: Params) -> tuple[str, ...]:
        """Names of the output branches for these params (empty unless BRANCHES)."""
        return cls.fixed_branches

    @classmethod
    def conditions(cls, params: Params) -> dict[str, str]:
        """SQL conditions in these params, keyed by field path, for validation and the engine."""
        found = {}
        for name in cls.condition_fields:
            value = getattr(params, name)
            if value:
                found[name] = value
        return found

    @classmethod
    def templates(cls, params: Params) -> dict[str, str]:
        """Liquid templates in these params, keyed by field path."""
        found = {}
        for name in cls.template_fields:
            value = getattr(params, name)
            if isinstance(value, str) and value:
                found[name] = value
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, str):
                        found[f"{name}.{key}"] = item
        return found

    @classmethod
    def summary(cls, params: Params) -> str:
        """One line for the canvas card; subclasses say what matters most."""
        return cls.label

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Everything the UI palette and docs need, as JSON-ready data."""
        return {
            "type": cls.type,
            "category": cls.category.value,
            "label": cls.label,
            "icon": cls.icon,
            "help": cls.help,
            "color": CATEGORY_COLORS[cls.category],
            "outputs": cls.outputs.value,
            "branches": list(cls.fixed_branches),
            "channel": cls.channel,
            "trigger_kind": cls.trigger_kind.value if cls.trigger_kind else None,
            "params_schema": cls.params_model.model_json_schema(),
        }


def shorten(text: str, limit: int = 48) -> str:
    """Collapse whitespace and cut to `limit` characters for one-line summaries."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
