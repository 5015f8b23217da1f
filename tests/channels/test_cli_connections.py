"""`mawb connections list | test` against real servers."""

from __future__ import annotations

import json

import yaml
from channel_servers import SmtpServer, free_port, smtp_settings
from typer.testing import CliRunner

from mawb.cli import app

runner = CliRunner()


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def write(home, **connections) -> None:
    (home / "connections.yaml").write_text(yaml.safe_dump({"connections": connections}))


def test_list_shows_references_never_values(home, smtp_server, tls_files) -> None:
    write(home, mail=smtp_settings(smtp_server, tls_files[0]),
          hooks={"kind": "webhook", "signing_secret": "env:UNSET_HOOK_SECRET"})
    result = cli("connections", "list", "--home", home, "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mail"]["secrets"] == {"password": {"ref": "env:MAIL_PASSWORD",
                                                    "resolves": True}}
    assert rows["hooks"]["secrets"]["signing_secret"]["resolves"] is False
    assert "s3cret" not in result.output

    text = cli("connections", "list", "--home", home)
    assert text.exit_code == 0 and "UNRESOLVED" in text.stdout and "s3cret" not in text.stdout


def test_test_handshakes_with_the_smtp_server(home, smtp_server, tls_files) -> None:
    write(home, mail=smtp_settings(smtp_server, tls_files[0]))
    result = cli("connections", "test", "mail", "--home", home)
    assert result.exit_code == 0, result.output
    assert "EHLO ok, STARTTLS ok (TLSv1." in result.stdout and "AUTH ok as mawb" in result.stdout
    assert smtp_server.mailbox.logins == 1 and smtp_server.mailbox.messages == []


def test_test_fails_with_one_error_line(home, tls_files) -> None:
    closed = SmtpServer(*tls_files, port=free_port())  # never started
    write(home, mail=smtp_settings(closed, tls_files[0]))
    result = cli("connections", "test", "mail", "--home", home)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: mail: smtp 127.0.0.1:{closed.port}: connection refused"]


def test_unknown_name_and_invalid_file_exit_2(home) -> None:
    write(home, api={"kind": "http", "base_url": "https://api.example"})
    unknown = cli("connections", "test", "nope", "--home", home)
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: no connection 'nope' in connections.yaml " \
                                     "(connections: api)"
    write(home, api={"kind": "http", "token": "inline-token"})
    invalid = cli("connections", "list", "--home", home)
    assert invalid.exit_code == 2 and "Traceback" not in invalid.output
    assert invalid.stderr.strip().splitlines() == [
        "error: connections.yaml: api.token: secrets must be references (env:NAME, file:PATH "
        "or connection:ID), not the value"]
