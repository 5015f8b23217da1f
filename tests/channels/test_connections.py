"""connections.yaml: secrets only by reference, clear errors, references resolved."""

from __future__ import annotations

import json
import textwrap

import pytest
from channel_servers import make_connection

from mawb.channels.connections import (
    ConnectionsError,
    LinkContext,
    SecretError,
    load_connections,
    provider_for,
    resolve_secret,
)
from mawb.channels.sandbox import SandboxProvider


def write(home, text: str) -> None:
    (home / "connections.yaml").write_text(textwrap.dedent(text))


def problems(home) -> list[str]:
    with pytest.raises(ConnectionsError) as caught:
        load_connections(home)
    return caught.value.problems


def test_an_inline_secret_is_refused_naming_the_field(home) -> None:
    write(home, """\
        connections:
          mail:
            kind: smtp
            host: smtp.example.com
            username: mawb
            password: hunter2-inline
            from: news@shop.example
          sms:
            kind: twilio
            account_sid: AC1
            auth_token: env:TWILIO_TOKEN
            from: "+15550001111"
          api:
            kind: http
            headers: {Authorization: "Bearer abc-inline"}
        """)
    found = problems(home)
    assert found == [
        "connections.yaml: mail.password: secrets must be references (env:NAME, file:PATH or "
        "connection:ID), not the value",
        "connections.yaml: api.headers: header Authorization: secrets must be references "
        "(env:NAME, file:PATH or connection:ID), not the value"]
    assert not any("inline" in line for line in found)  # the value is never repeated


@pytest.mark.parametrize(("text", "expected"), [
    ("connections:\n  x:\n    kind: ftp\n",
     "connections.yaml: x.kind: expected one of smtp, webpush, twilio, mastodon, hubspot, http, "
     "webhook"),
    ("connections:\n  x:\n    kind: http\n    retries: 3\n",
     "connections.yaml: x.retries: Extra inputs are not permitted"),
    ("connections:\n  x:\n    kind: smtp\n    from: a@b.example\n",
     "connections.yaml: x.host: Field required"),
    ("connections:\n  Bad Name:\n    kind: http\n",
     "connections.yaml: Bad Name: a connection name is lowercase letters, digits, - and _"),
    ("connections: [1, 2]\n", "connections.yaml: connections must map names to settings"),
    ("connections:\n  x: {kind: http, concurrency: 0}\n",
     "connections.yaml: x.concurrency: Input should be greater than or equal to 1"),
])
def test_invalid_files_say_where(home, text, expected) -> None:
    write(home, text)
    assert problems(home) == [expected]


def test_unreadable_yaml(home) -> None:
    write(home, "connections:\n  x: [unclosed\n")
    (problem,) = problems(home)
    assert problem.startswith("connections.yaml: unreadable (")


def test_no_file_means_no_connections(home) -> None:
    assert load_connections(home) == {}
    assert isinstance(provider_for(None, LinkContext(b"k")), SandboxProvider)


def test_references_resolve(home, monkeypatch) -> None:
    monkeypatch.setenv("TOKEN_A", "from-env")
    (home / "secrets").mkdir()
    (home / "secrets" / "token").write_text("from-file\n")
    monkeypatch.setenv("AIRFLOW_CONN_MAIL_RELAY", json.dumps(
        {"conn_type": "smtp", "host": "relay", "login": "u", "password": "from-json"}))
    monkeypatch.setenv("AIRFLOW_CONN_CRM", "http://user:p%40ss%2Fword@crm.example:8080/api")
    assert resolve_secret("env:TOKEN_A") == "from-env"
    assert resolve_secret("file:secrets/token", home) == "from-file"
    assert resolve_secret(f"file:{home}/secrets/token") == "from-file"
    assert resolve_secret("connection:mail_relay") == "from-json"
    assert resolve_secret("connection:crm") == "p@ss/word"


@pytest.mark.parametrize(("ref", "words"), [
    ("env:NOT_SET_ANYWHERE", "environment variable NOT_SET_ANYWHERE is not set"),
    ("file:missing.txt", "cannot read"),
    ("connection:nowhere", "AIRFLOW_CONN_NOWHERE is not set"),
    ("plain value", "secrets must be references"),
])
def test_unresolvable_references(home, ref, words) -> None:
    with pytest.raises(SecretError, match=words):
        resolve_secret(ref, home)


def test_a_missing_secret_stops_the_provider_naming_connection_and_field(home) -> None:
    connection = make_connection(home, "social", kind="mastodon", base_url="https://m.example",
                                 access_token="env:MISSING_MASTODON_TOKEN")
    assert connection.secret_refs() == {"access_token": "env:MISSING_MASTODON_TOKEN"}
    with pytest.raises(SecretError, match="connection social: access_token: env:MISSING"):
        provider_for(connection, LinkContext(b"k"))


def test_settings_and_defaults(home) -> None:
    connection = make_connection(home, "mail", kind="smtp", host="smtp.example.com",
                                 **{"from": "news@shop.example"})
    assert (connection.name, connection.port, connection.security) == ("mail", 587, "starttls")
    assert (connection.tracking, connection.allow_hosts, connection.rate_per_second) == (
        False, [], None)
    assert connection.summary() == "smtp smtp.example.com:587 (starttls) from news@shop.example"
