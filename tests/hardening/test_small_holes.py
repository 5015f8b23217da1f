"""Issue item 7: the smaller holes, each now refused with a message naming node and field.

Templates that can never render, literal credentials in headers and params, addresses that
are not one address, header names that differ only by case, ids that are not slugs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest
from hardening_helpers import errors, one_step, validate

from mawb.engine import Workspace
from mawb.intake import IntakeError, read_contacts
from mawb.model import Flow

if TYPE_CHECKING:
    from pathlib import Path

NEVER_RENDERS = {
    "include": "{% include 'footer' %}",
    "include by variable": "{% include footer %}",
    "render": "{% render 'footer' %}",
    "unknown filter": "Hi {{ first_name | shout }}",
    "unknown filter in a tag": "{% if x %}{{ y | nosuch: 1 }}{% endif %}",
}


@pytest.mark.parametrize("name", list(NEVER_RENDERS))
def test_templates_that_can_never_render_are_diagnostics(name: str) -> None:
    flow = one_step("email_send", subject="Hello", body=NEVER_RENDERS[name])
    found = errors(validate(flow))
    assert [(node, field) for node, field, _ in found] == [("step", "params.body")], found
    assert found[0][2].startswith("Liquid: ")


def test_ordinary_filters_still_validate() -> None:
    body = "Hi {{ first_name | default: 'there' | capitalize }}, {{ score | plus: 1 }}"
    assert validate(one_step("email_send", subject="Hello", body=body)).valid


@pytest.mark.parametrize("header", ["Authorization", "X-Api-Key", "Cookie", "X-Auth-Token"])
def test_literal_credentials_in_headers_are_refused(header: str) -> None:
    flow = one_step("api_call", url="https://api.example.com/x",
                    headers={header: "Bearer abc123"})
    found = errors(validate(flow))
    assert [(node, field) for node, field, _ in found] == [("step", "params.headers")], found
    assert "never the value" in found[0][2]
    ok = one_step("api_call", url="https://api.example.com/x",
                  headers={header: "env:API_TOKEN", "Accept": "application/json"})
    assert validate(ok).valid


@pytest.mark.parametrize("name", ["api_key", "crm_token", "smtp_password", "signing_secret"])
def test_literal_credentials_in_flow_params_are_refused(name: str) -> None:
    flow = one_step("data_update", set={"x": 1}, increment={})
    flow.params[name] = "hunter2"
    assert [(n, f) for n, f, _ in errors(validate(flow))] == [(None, f"params.{name}")]
    flow.params[name] = "env:SOME_SECRET"
    assert validate(flow).valid


@pytest.mark.parametrize("email", ["a@x.io,b@y.io", "a@x.io\nBcc: b@y.io", "a\x00@x.io",
                                   "a @x.io", "no-at-sign", "a@nodot", "<a@x.io>"])
def test_emails_must_be_one_address(email: str) -> None:
    with pytest.raises(IntakeError) as caught:
        read_contacts(pd.DataFrame({"contact_id": ["c1"], "email": [email]}))
    assert [(p.row, p.column) for p in caught.value.problems] == [(1, "email")]


@pytest.mark.parametrize("header", ["contact_id,email,email", "contact_id,Email,email",
                                    "contact_id,Email", "Contact_ID,email"])
def test_header_names_are_exact_and_unique(header: str, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(header + "\n" + ",".join(["c1"] + ["a@x.io"] * header.count(",")) + "\n",
                    encoding="utf-8")
    with pytest.raises(IntakeError) as caught:
        read_contacts(path)
    assert all(p.row is None and p.column for p in caught.value.problems)


def test_a_written_attribute_must_match_a_column_exactly() -> None:
    flow = one_step("data_update", set={"Score": 1}, increment={})
    found = errors(validate(flow, columns={"contact_id", "score"}))
    assert [(node, field) for node, field, _ in found] == [("step", "params.set")]


def test_flow_ids_are_slugs_when_reading_the_workspace(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    Flow.new("outside").add("start", "manual_trigger").save(tmp_path / "outside" / "v1.json")
    assert ws.versions("../../outside") == []
    with pytest.raises(ValueError, match="must be a lower-case slug"):
        ws.flow_path("../../outside", 1)
