"""Integration node types: CRM records, read-only queries, external APIs, signed webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from mawb import query
from mawb.nodes.actions import ConnectionName, HttpParams, check_attribute_names
from mawb.nodes.base import SECRET_REF, Category, Message, NodeType, Params, shorten
from mawb.nodes.registry import register
from mawb.query import check_query

if TYPE_CHECKING:
    import builtins

CrmObject = Literal["contact", "lead", "deal", "task"]
FieldValues = dict[str, str | int | float | bool]


class CrmUpdateParams(Params):
    crm: str = Field("local", description="CRM adapter: local (store table) or a configured one")
    object: CrmObject = Field("lead", description="Record type")
    fields: FieldValues = Field(
        default_factory=lambda: FieldValues({"lead_status": "qualified"}),
        min_length=1,
        description="Fields to write; string values are Liquid",
    )
    mirror_attributes: bool = Field(
        True, description="Also copy the fields onto the contact's attributes"
    )
    connection: str | None = ConnectionName

    @field_validator("fields")
    @classmethod
    def _names(cls, value: dict[str, builtins.object]) -> dict[str, builtins.object]:
        check_attribute_names(value)
        return value


@register
class CrmUpdate(NodeType):
    type = "crm_update"
    category = Category.INTEGRATION
    label = "Update CRM"
    icon = "user-check"
    help = "Update the contact's CRM record (local CRM table by default, or an HTTP adapter)."
    params_model = CrmUpdateParams
    outbox_channel = "crm"
    message = Message.CRM_UPDATE
    channel = "crm"
    template_fields = ("fields",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, CrmUpdateParams)
        fields = ", ".join(f"{k}={v}" for k, v in params.fields.items())
        return shorten(f"{params.object}: {fields}")


class CrmCreateParams(CrmUpdateParams):
    object: CrmObject = Field("deal", description="Record type")
    fields: FieldValues = Field(
        default_factory=lambda: FieldValues({"name": "{{ company }} opportunity",
                                             "stage": "new"}),
        min_length=1,
        description="Fields of the new record; string values are Liquid",
    )
    mirror_attributes: bool = False


@register
class CrmCreate(NodeType):
    type = "crm_create"
    category = Category.INTEGRATION
    label = "Create CRM record"
    icon = "user-plus"
    help = "Create a CRM record (deal, task, ...) linked to the contact."
    params_model = CrmCreateParams
    outbox_channel = "crm"
    message = Message.CRM_CREATE
    channel = "crm"
    template_fields = ("fields",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, CrmCreateParams)
        return shorten(f"new {params.object}")


class DatabaseQueryParams(Params):
    sql: str = Field(
        "SELECT contact_id, count(*) AS page_views_7d FROM events "
        "WHERE name = 'page_view' GROUP BY contact_id",
        min_length=1,
        description="Read-only SELECT over the store's tables; must return contact_id",
    )
    columns: list[str] = Field(
        default_factory=list,
        description="Result columns copied onto contacts (empty = all except contact_id)",
    )

    @field_validator("columns")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        check_attribute_names(value)
        return value

    @field_validator("sql")
    @classmethod
    def _read_only(cls, value: str) -> str:
        checked = check_query(value)
        written = [name for name in checked.outputs if name not in ("contact_id", "*")]
        check_attribute_names(written)
        return value

QUERYABLE_TABLES = query.QUERYABLE_TABLES


@register
class DatabaseQuery(NodeType):
    type = "database_query"
    category = Category.INTEGRATION
    label = "Database query"
    icon = "database"
    help = "Enrich contacts with the result of a read-only SQL query keyed by contact_id."
    params_model = DatabaseQueryParams

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, DatabaseQueryParams)
        return shorten(params.sql)


class ExternalApiParams(HttpParams):
    method: Literal["GET", "POST"] = Field("GET", description="HTTP method")
    store: dict[str, str] = Field(
        default_factory=lambda: {"company_size": "data.employees"},
        min_length=1,
        description="Attribute -> dotted path in the JSON response",
    )
    cache_hours: float = Field(24, ge=0, le=720, description="Reuse a contact's response this long")


@register
class ExternalApi(NodeType):
    type = "external_api"
    category = Category.INTEGRATION
    label = "Fetch data"
    icon = "download"
    help = "Fetch data for each contact from an external API into contact attributes."
    params_model = ExternalApiParams
    outbox_channel = "api"
    message = Message.REQUEST
    channel = "http"
    template_fields = ("url", "headers")

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, ExternalApiParams)
        return shorten(f"{params.method} {params.url}")


class WebhookCallParams(Params):
    url: str = Field("https://hooks.example.com/mawb", description="Receiver URL")
    secret: str = Field(
        "env:MAWB_WEBHOOK_SIGNING_KEY", pattern=SECRET_REF,
        description="Reference to the HMAC signing key; the signature goes in X-Mawb-Signature",
    )
    event: str = Field("flow.step", min_length=1, description="Event name in the payload")
    include: list[str] = Field(
        default_factory=lambda: ["email", "first_name"],
        description="Contact attributes included in the payload",
    )
    timeout_seconds: float = Field(10, gt=0, le=120)
    connection: str | None = ConnectionName

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("url must start with http:// or https://")
        return value

    @field_validator("include")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        check_attribute_names(value, written=False)
        return value


@register
class WebhookCall(NodeType):
    type = "webhook_call"
    category = Category.INTEGRATION
    label = "Call webhook"
    icon = "send"
    help = "POST a signed JSON payload about the contact to a URL (e.g. a sales alert)."
    params_model = WebhookCallParams
    outbox_channel = "webhook"
    message = Message.WEBHOOK
    channel = "http"

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, WebhookCallParams)
        return shorten(f"{params.event} → {params.url}")
