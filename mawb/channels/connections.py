"""Named delivery connections: the workspace's `connections.yaml`, its secrets, and providers.

```yaml
connections:
  mail:
    kind: smtp
    host: smtp.example.com
    username: mawb
    password: env:MAIL_PASSWORD          # a reference, never the value
    from: news@example.com
    rate_per_second: 50
```

A secret is only ever named: `env:NAME` (an environment variable), `file:PATH` (a mounted file,
relative to the workspace) or `connection:ID` (an Airflow Connection, read from
`AIRFLOW_CONN_<ID>` in its JSON or URI form, as Airflow's own environment backend does). A value
written inline is a validation error naming the connection and the field, and no error message
ever repeats what was written there. Secrets are resolved when a provider is built, so a missing
variable stops the whole connection before anything is sent.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from mawb.links import workspace_secret
from mawb.nodes.base import SECRET_REF

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from mawb.channels.base import Provider

CONNECTIONS_FILE = "connections.yaml"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8600"
KINDS = ("smtp", "webpush", "twilio", "mastodon", "hubspot", "http", "webhook")
SECRET_RULE = (
    "secrets must be references (env:NAME, file:PATH or connection:ID), not the value"  # noqa: S105
)
# Headers that carry credentials: in `headers:` their values must be references too.
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key",
                               "api-key", "x-auth-token"})
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class ConnectionsError(ValueError):
    """connections.yaml is unreadable or invalid; every problem names connection and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SecretError(ValueError):
    """A secret reference that cannot be resolved (the message never contains a value)."""


def _reference(value: str) -> str:
    if not re.match(SECRET_REF, value):
        raise ValueError(SECRET_RULE)
    return value


class _Secret:
    """Marks a field as a secret reference (see `Connection.secret_refs`)."""


_SECRET = _Secret()
SecretRef = Annotated[str, AfterValidator(_reference), _SECRET]


def _is_secret(info: FieldInfo) -> bool:
    """Whether a field is a `SecretRef` (also inside `SecretRef | None`)."""
    options = [info.annotation, *get_args(info.annotation)]
    return _SECRET in info.metadata or any(
        _SECRET in getattr(option, "__metadata__", ()) for option in options)


class _Connection(BaseModel):
    """Settings every connection has: pacing, limits, tracking and the outbound allow-list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rate_per_second: float | None = Field(None, gt=0, le=100_000,
                                          description="Messages per second (none: unpaced)")
    concurrency: int = Field(4, ge=1, le=64, description="Parallel sessions / requests")
    timeout_seconds: float = Field(10, gt=0, le=120, description="Connect and read timeout")
    tracking: bool = Field(False, description="Open pixel and click-tracked links")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts exempt from the private-address guard (e.g. a local test server)")
    max_response_bytes: int = Field(1 << 20, ge=1024, le=64 << 20,
                                    description="Longest response body read")
    _name: str = PrivateAttr("")
    _home: Path | None = PrivateAttr(None)

    @property
    def name(self) -> str:
        """The connection's key in connections.yaml."""
        return self._name

    @field_validator("allow_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [host.strip().strip("[]").lower() for host in value]

    def secret_refs(self) -> dict[str, str]:
        """Field name -> reference, for every secret field that is set."""
        refs = {name: getattr(self, name) for name, info in type(self).model_fields.items()
                if _is_secret(info) and getattr(self, name)}
        for header, value in getattr(self, "headers", {}).items():
            if header.lower() in SENSITIVE_HEADERS:
                refs[f"headers.{header}"] = value
        return refs

    def secret(self, field: str) -> str | None:
        """The resolved value of secret `field` (None when unset); raises SecretError."""
        ref = self.secret_refs().get(field)
        if ref is None:
            return None
        try:
            return resolve_secret(ref, self._home)
        except SecretError as error:
            raise SecretError(f"connection {self.name}: {field}: {error}") from None

    def summary(self) -> str:
        return self.kind  # type: ignore[attr-defined]


class SmtpConnection(_Connection):
    kind: Literal["smtp"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    from_address: str = Field(alias="from", description="Sender address")
    from_name: str | None = None
    reply_to: str | None = None
    unsubscribe_mailto: str | None = Field(
        None, description="Address for the mailto: form of List-Unsubscribe")
    unsubscribe_footer: bool = Field(
        True, description="Append a visible unsubscribe line to marketing mail")
    ca_file: str | None = Field(None, description="CA bundle for a private mail server's cert")

    @model_validator(mode="after")
    def _safe_auth(self) -> SmtpConnection:
        if self.security == "none" and self.username:
            raise ValueError("security: none would send the password unencrypted; "
                             "use starttls or tls")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if "@" not in self.from_address:
            raise ValueError(f"from: {self.from_address!r} is not an email address")
        return self

    def summary(self) -> str:
        return f"smtp {self.host}:{self.port} ({self.security}) from {self.from_address}"


class WebPushConnection(_Connection):
    kind: Literal["webpush"]
    vapid_private_key: SecretRef = Field(description="VAPID key: raw base64url or PEM")
    vapid_subject: str = Field(description="mailto: or https: contact for the push services")
    ttl_seconds: int = Field(86_400, ge=0, le=2_419_200)
    urgency: Literal["very-low", "low", "normal", "high"] = "normal"

    @field_validator("vapid_subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("vapid_subject must be a mailto: or https: URL")
        return value

    def summary(self) -> str:
        return f"webpush (VAPID {self.vapid_subject})"


class _HttpConnection(_Connection):
    base_url: str | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    def summary(self) -> str:
        return f"{self.kind} {self.base_url or '(URL per message)'}"  # type: ignore[attr-defined]


class TwilioConnection(_HttpConnection):
    kind: Literal["twilio"]
    base_url: str | None = "https://api.twilio.com"
    account_sid: str
    auth_token: SecretRef
    from_number: str | None = Field(None, alias="from")
    messaging_service_sid: str | None = None

    @model_validator(mode="after")
    def _sender(self) -> TwilioConnection:
        if not (self.from_number or self.messaging_service_sid):
            raise ValueError("set from (a phone number) or messaging_service_sid")
        return self


class MastodonConnection(_HttpConnection):
    kind: Literal["mastodon"]
    base_url: str | None = Field(description="The instance, e.g. https://mastodon.social")
    access_token: SecretRef
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"


class HubspotConnection(_HttpConnection):
    kind: Literal["hubspot"]
    base_url: str | None = "https://api.hubapi.com"
    access_token: SecretRef


class GenericHttpConnection(_HttpConnection):
    kind: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    token: SecretRef | None = Field(None, description="Sent as Authorization: Bearer")
    username: str | None = None
    password: SecretRef | None = None
    check_path: str = Field("", description="Path of the URL that `connections test` fetches")

    @field_validator("headers")
    @classmethod
    def _no_inline_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for header, text in value.items():
            if header.lower() in SENSITIVE_HEADERS and not re.match(SECRET_REF, text):
                raise ValueError(f"header {header}: {SECRET_RULE}")
        return value


class WebhookConnection(_HttpConnection):
    kind: Literal["webhook"]
    url: str | None = Field(None, description="Receiver (else the node's url)")
    signing_secret: SecretRef | None = Field(
        None, description="whsec_<base64> secret (else the node's secret reference)")

    @field_validator("url")
    @classmethod
    def _receiver(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("url must start with http:// or https://")
        return value

    def summary(self) -> str:
        return f"webhook {self.url or '(URL per message)'}"


Connection = Annotated[
    SmtpConnection | WebPushConnection | TwilioConnection | MastodonConnection
    | HubspotConnection | GenericHttpConnection | WebhookConnection,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Connection)


@dataclass(frozen=True)
class LinkContext:
    """What providers need to mint signed links: the workspace secret and the public base URL."""

    secret: bytes
    base_url: str = DEFAULT_PUBLIC_URL

    @classmethod
    def for_workspace(cls, home: Path, base_url: str | None = None) -> LinkContext:
        url = base_url or os.environ.get("MAWB_PUBLIC_URL") or DEFAULT_PUBLIC_URL
        return cls(workspace_secret(home), url.rstrip("/"))


def load_connections(home: Path) -> dict[str, Any]:
    """The workspace's connections by name ({} without a connections.yaml); raises
    ConnectionsError listing every problem as `connections.yaml: NAME.FIELD: message`."""
    path = Path(home) / CONNECTIONS_FILE
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConnectionsError([f"{CONNECTIONS_FILE}: unreadable ({reason})"]) from None
    entries = _entries(document)
    problems: list[str] = []
    connections: dict[str, Any] = {}
    for name, settings in entries.items():
        connection = _parse(str(name), settings, problems)
        if connection is not None:
            connection._name = str(name)
            connection._home = Path(home)
            connections[str(name)] = connection
    if problems:
        raise ConnectionsError(problems)
    return connections


def _entries(document: Any) -> dict[Any, Any]:
    if document is None:
        return {}
    if not isinstance(document, dict) or set(document) - {"connections"}:
        raise ConnectionsError([f"{CONNECTIONS_FILE}: expected a mapping with one key, "
                                "connections: {NAME: {kind: ..., ...}}"])
    entries = document.get("connections") or {}
    if not isinstance(entries, dict):
        raise ConnectionsError([f"{CONNECTIONS_FILE}: connections must map names to settings"])
    return entries


def _parse(name: str, settings: Any, problems: list[str]) -> Any:
    where = f"{CONNECTIONS_FILE}: {name}"
    if not _NAME.match(name):
        problems.append(f"{where}: a connection name is lowercase letters, digits, - and _")
        return None
    if not isinstance(settings, dict):
        problems.append(f"{where}: expected settings (kind: ...), got {type(settings).__name__}")
        return None
    if settings.get("kind") not in KINDS:
        problems.append(f"{where}.kind: expected one of {', '.join(KINDS)}")
        return None
    try:
        return _ADAPTER.validate_python(settings)
    except ValidationError as error:
        for item in error.errors(include_input=False):
            loc = [str(part) for part in item["loc"][1:]]  # [0] is the kind tag
            field = ".".join([name, *loc])
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{CONNECTIONS_FILE}: {field}: {message}")
        return None


def resolve_secret(ref: str, home: Path | None = None) -> str:
    """The value a reference names; `file:` paths are relative to `home`. Raises SecretError."""
    if not re.match(SECRET_REF, ref):
        raise SecretError(SECRET_RULE)
    scheme, _, target = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(target)
        if value is None:
            raise SecretError(f"{ref}: environment variable {target} is not set")
        return value
    if scheme == "file":
        path = Path(target) if Path(target).is_absolute() or home is None else Path(home) / target
        try:
            return path.read_text(encoding="utf-8").removesuffix("\n")
        except (OSError, UnicodeDecodeError) as error:
            raise SecretError(f"{ref}: cannot read {path} ({type(error).__name__})") from None
    password = airflow_connection(target).get("password")
    if not password:
        raise SecretError(f"{ref}: the Airflow connection has no password")
    return str(password)


def airflow_connection(conn_id: str) -> dict[str, Any]:
    """An Airflow Connection from `AIRFLOW_CONN_<ID>` (JSON or URI form) as a dict with
    conn_type, host, port, login, password, schema and extra."""
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    text = os.environ.get(variable)
    if text is None:
        raise SecretError(f"connection:{conn_id}: environment variable {variable} is not set")
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            raise SecretError(f"connection:{conn_id}: {variable} is not valid JSON") from None
        if not isinstance(value, dict):
            raise SecretError(f"connection:{conn_id}: {variable} must be a JSON object")
        return value
    parts = urlsplit(text)
    if not parts.scheme:
        raise SecretError(f"connection:{conn_id}: {variable} is neither JSON nor a URI")
    return {"conn_type": parts.scheme, "host": unquote(parts.hostname or ""),
            "port": parts.port, "login": unquote(parts.username or ""),
            "password": unquote(parts.password or ""), "schema": unquote(parts.path[1:]),
            "extra": parts.query}


def provider_for(connection: Any | None, links: LinkContext) -> Provider:
    """The provider of `connection` (the sandbox for None). Resolves its secrets now, so a
    missing one raises SecretError before any message is claimed for it."""
    from mawb.channels import http, sandbox, smtp, webpush

    if connection is None:
        return sandbox.SandboxProvider()
    builders: dict[str, Any] = {
        "smtp": smtp.SmtpProvider, "webpush": webpush.WebPushProvider,
        "twilio": http.TwilioProvider, "mastodon": http.MastodonProvider,
        "hubspot": http.HubspotProvider, "http": http.GenericHttpProvider,
        "webhook": http.WebhookProvider,
    }
    return builders[connection.kind](connection, links)
