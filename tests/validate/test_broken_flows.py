"""Every diagnostic code of mawb.validate has a broken flow file that triggers it, in place.

The fixture files in `broken/` are named after the code they exhibit. Each expectation names the
node and field the diagnostic must point at (the canvas highlights exactly that) and every other
code the same file legitimately produces, so a check that starts reporting extra or fewer problems
fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

import mawb.validate
from mawb.model import read_document
from mawb.validate import Severity, validate_document

BROKEN = Path(__file__).parent / "broken"
CONTACT_COLUMNS = {"contact_id", "email", "first_name", "lifecycle", "engagement_score"}


class Expectation(NamedTuple):
    node_id: str | None
    field: str | None
    also: frozenset[str] = frozenset()
    severity: Severity = Severity.ERROR
    columns: frozenset[str] | None = None


EXPECTATIONS: dict[str, Expectation] = {
    "schema": Expectation("hello", "type"),
    "bad_id": Expectation("Hello World", "id"),
    "duplicate_id": Expectation("hello", "id"),
    "unknown_type": Expectation("shell", "type"),
    "bad_params": Expectation("wait", "params.days"),
    "missing_node": Expectation("hello", "edges"),
    "duplicate_edge": Expectation("start", "edges", also=frozenset({"too_many_edges"})),
    "no_trigger": Expectation(None, "nodes"),
    "trigger_input": Expectation("signup", "edges"),
    "unreachable": Expectation("orphan", None),
    "missing_branch": Expectation("engaged", "edges"),
    "unknown_branch": Expectation("engaged", "edges"),
    "duplicate_branch": Expectation("engaged", "edges"),
    "too_many_edges": Expectation("hello", "edges"),
    "illegal_cycle": Expectation("hello", "edges"),
    "loop_not_closed": Expectation("attempts", "edges", severity=Severity.WARNING),
    "merge_inputs": Expectation("join", "edges"),
    "bad_condition": Expectation("engaged", "params.condition"),
    "unknown_param": Expectation("engaged", "params.condition"),
    "unknown_column": Expectation(
        "big_feet", "params.condition", columns=frozenset(CONTACT_COLUMNS)
    ),
    "bad_template": Expectation("hello", "params.subject"),
    "bad_settings": Expectation(None, "settings.timezone"),
    "unconnected_branch": Expectation("engaged", "edges", severity=Severity.WARNING),
    "unknown_variable": Expectation(
        "hello", "params.subject", severity=Severity.WARNING, columns=frozenset(CONTACT_COLUMNS)
    ),
    "secret_literal": Expectation(None, "params.api_token"),
}


def documented_codes() -> list[str]:
    """The codes listed in the table of mawb.validate's module docstring."""
    doc = mawb.validate.__doc__ or ""
    return [c for c in re.findall(r"^\| ([a-z_]+) \|", doc, flags=re.MULTILINE) if c != "code"]


def test_every_documented_code_has_a_fixture_and_an_expectation() -> None:
    codes = documented_codes()
    assert len(codes) == 25
    assert sorted(codes) == sorted(EXPECTATIONS)
    assert sorted(p.stem for p in BROKEN.glob("*.json")) == sorted(codes)


@pytest.mark.parametrize("code", sorted(EXPECTATIONS))
def test_broken_flow_reports_its_code_on_the_right_node_and_field(code: str) -> None:
    expected = EXPECTATIONS[code]
    document = read_document(BROKEN / f"{code}.json")
    report = validate_document(document, columns=expected.columns)

    hits = [d for d in report.diagnostics if d.code == code]
    assert hits, f"{code}.json did not report {code}: {[str(d) for d in report.diagnostics]}"
    assert any(d.node_id == expected.node_id and d.field == expected.field for d in hits), [
        (d.node_id, d.field) for d in hits
    ]
    assert all(d.severity is expected.severity for d in hits)
    assert all(d.message.strip() for d in hits)
    assert {d.code for d in report.diagnostics} == {code} | expected.also
    assert report.valid is (expected.severity is Severity.WARNING)
    assert report.to_dict()["valid"] is report.valid


def test_unknown_column_needs_the_contact_schema() -> None:
    document = read_document(BROKEN / "unknown_column.json")
    assert validate_document(document).valid
    with_schema = validate_document(document, columns=CONTACT_COLUMNS | {"shoe_size"})
    assert with_schema.valid


def test_fixing_the_broken_field_makes_the_flow_valid() -> None:
    """The fixtures are one mistake away from valid flows, so the code is what they test."""
    document = read_document(BROKEN / "bad_settings.json")
    document["settings"]["timezone"] = "Europe/Paris"
    assert validate_document(document).diagnostics == ()

    document = read_document(BROKEN / "bad_condition.json")
    document["nodes"][1]["params"]["condition"] = "engagement_score > 0.5"
    assert validate_document(document).diagnostics == ()
