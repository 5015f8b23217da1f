"""Issue item 6: every input is bounded before it is allocated, and compiling is linear.

A 10,000-character description used to take minutes to compile (string chunking re-escaped
the rest of the text for every character it shrank); a one-row CSV with 10,000 columns used
23 GB. Limits are checked on the header and the file before anything big is built.
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING

import pytest

from mawb.compile import source
from mawb.intake import MAX_COLUMNS, MAX_FIELD_LENGTH, IntakeError, read_contacts
from mawb.model import MAX_NODES, Flow, FlowFileError, load, loads

if TYPE_CHECKING:
    from pathlib import Path


def escaped_characters(text: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many characters `long_string` escapes for `text` (its work, not its time)."""
    seen = [0]
    original = source._escape

    def counting(chunk: str, quote: str) -> str:
        seen[0] += len(chunk)
        return original(chunk, quote)

    monkeypatch.setattr(source, "_escape", counting)
    literal = source.long_string(text, 16, 1)
    monkeypatch.undo()
    assert ast.literal_eval(literal) == text  # our own generated literal, read back
    return seen[0]


def test_splitting_a_long_string_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    small = escaped_characters('word "quoted" ' * 70, monkeypatch)  # ~1,000 characters
    large = escaped_characters('word "quoted" ' * 700, monkeypatch)  # ~10,000 characters
    assert large <= 12 * small  # linear growth (the old loop grew with the square and worse)
    assert large <= 4 * len('word "quoted" ' * 700)


def test_a_10000_character_description_compiles(tmp_path: Path) -> None:
    from mawb.compile.airflow import compile_airflow

    flow = (Flow.new("long", description="x " * 5000)
            .add("start", "manual_trigger").add("mail", "email_send", subject="a", body="b")
            .connect("start", "mail"))
    path = compile_airflow(flow, tmp_path / "dags")
    assert "x x x" in path.read_text(encoding="utf-8")


def test_too_many_columns_are_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    columns = MAX_COLUMNS + 1
    path.write_text("contact_id," + ",".join(f"c{i}" for i in range(columns)) + "\n"
                    + "c1" + "," * columns + "\n", encoding="utf-8")
    with pytest.raises(IntakeError, match=f"at most {MAX_COLUMNS} are accepted"):
        read_contacts(path)


def test_a_huge_header_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("contact_id," + "x" * 2_000_000 + "\nc1,y\n", encoding="utf-8")
    with pytest.raises(IntakeError, match="header line is longer"):
        read_contacts(path)


def test_an_oversized_field_is_a_row_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"contact_id,notes\nc1,ok\nc2,{'n' * (MAX_FIELD_LENGTH + 1)}\n",
                    encoding="utf-8")
    with pytest.raises(IntakeError) as caught:
        read_contacts(path)
    assert [(p.row, p.column) for p in caught.value.problems] == [(2, "notes")]


def test_flow_size_is_bounded() -> None:
    flow = Flow.new("big").add("start", "manual_trigger")
    document = flow.to_dict()
    document["nodes"] = [{"id": f"n{i}", "type": "manual_trigger"} for i in range(MAX_NODES + 1)]
    with pytest.raises(FlowFileError, match="at most 1000 items"):
        loads(json.dumps(document))


def test_an_oversized_flow_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text('{"id": "x", "description": "' + "y" * 6_000_000 + '"}', encoding="utf-8")
    with pytest.raises(FlowFileError, match="larger than"):
        load(path)


def test_sql_rendered_messages_stop_at_the_liquid_output_limit(tmp_path):
    """The set-based renderer has no output limit of its own: a row it renders past
    python-liquid's cap is dead (render_failed) and its text is not kept; others still go."""
    from hardening_helpers import NOW, contacts, rows, workspace

    from mawb.model import Flow
    from mawb.personalize import OUTPUT_LIMIT

    frame = contacts(2)
    frame["bio"] = ["x" * 90_000, "short"]
    ws = workspace(tmp_path, frame)
    flow = (Flow.new("big").add("start", "time_based_trigger", schedule="@once")
            .add("mail", "email_send", subject="Hi", body="{{ bio }}{{ bio }}{{ bio }}")
            .connect("start", "mail"))
    ws.deploy(flow)
    ws.tick(flow, NOW)
    found = dict((row[0], row[1:]) for row in rows(
        ws, "SELECT contact_id, status, reason, length(body) FROM outbox_all ORDER BY 1"))
    assert found["c0"] == ("dead", "render_failed", None)
    assert found["c1"] == ("sent", None, len("short") * 3)
    assert 3 * 90_000 > OUTPUT_LIMIT
