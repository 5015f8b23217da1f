"""The `mawb` command line: exit codes, JSON shapes and clean errors.

Scripts and CI jobs call `mawb validate` and match on its exit code (0 valid, 1 invalid,
2 unreadable) and `--json` output, so both are contract (docs/architecture.md, section 9).
Most tests run the Typer app in-process; one runs the installed console script to prove that a
malformed file produces one line naming the file, not a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mawb.cli import app
from mawb.model import loads
from mawb.templates import load_template, template_ids

BROKEN = Path(__file__).parent / "validate" / "broken"
runner = CliRunner()


def write_template(tmp_path: Path, template_id: str = "lead_welcome_v1") -> Path:
    return load_template(template_id).save(tmp_path / f"{template_id}.json")


def test_validate_a_valid_flow_exits_0(tmp_path: Path) -> None:
    path = write_template(tmp_path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(f"{path}: valid")


def test_validate_a_yaml_flow(tmp_path: Path) -> None:
    path = load_template("win_back_v1").save(tmp_path / "win_back.yaml")
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0


def test_validate_an_invalid_flow_exits_1_and_lists_every_problem() -> None:
    path = BROKEN / "duplicate_edge.json"
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "[duplicate_edge] node start" in result.stdout
    assert "[too_many_edges] node start" in result.stdout
    assert "invalid (2 errors)" in result.stdout


def test_a_warning_alone_keeps_exit_0() -> None:
    result = runner.invoke(app, ["validate", str(BROKEN / "loop_not_closed.json")])
    assert result.exit_code == 0
    assert "warning [loop_not_closed]" in result.stdout


@pytest.mark.parametrize("name", ["bad_condition.json", "unreachable.json", "schema.json"])
def test_validate_json_has_the_contract_shape(name: str) -> None:
    result = runner.invoke(app, ["validate", str(BROKEN / name), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert set(data) == {"valid", "diagnostics"}
    assert data["valid"] is False
    assert data["diagnostics"]
    for item in data["diagnostics"]:
        assert set(item) == {"severity", "code", "node_id", "field", "message"}
        assert item["severity"] in {"error", "warning"}
    assert data["diagnostics"][0]["code"] == name.removesuffix(".json")


def test_validate_json_of_a_valid_flow(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(write_template(tmp_path)), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"valid": True, "diagnostics": []}


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("bad.json", '{"id": "x",\n  "nodes": [}\n', ":2:"),
        ("bad.yaml", "id: x\nnodes: [\n", "invalid YAML"),
        ("future.json", '{"schema_version": 7, "id": "x"}', "newer"),
        ("list.json", "[]", "object at the top level"),
    ],
)
def test_unreadable_flow_exits_2_naming_the_file(
    name: str, text: str, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}")
    assert fragment in result.stderr
    assert "Traceback" not in result.output


def test_unreadable_flow_with_json_reports_the_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["valid"] is False
    assert data["diagnostics"] == []
    assert str(path) in data["error"]


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "nope.json" in result.stderr


def test_console_script_prints_no_traceback_for_a_malformed_file(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("mawb")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    path = tmp_path / "broken.json"
    path.write_text('{\n  "id": "x",\n  "nodes": [\n', encoding="utf-8")
    done = subprocess.run(
        [str(script), "validate", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}:4:1:")


def test_schema_prints_the_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "mawb flow"
    assert "nodes" in schema["properties"]


def test_templates_list_lists_all_eight() -> None:
    result = runner.invoke(app, ["templates", "list"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert listed == template_ids()
    assert len(listed) == 8


def test_templates_list_json() -> None:
    result = runner.invoke(app, ["templates", "list", "--json"])
    assert result.exit_code == 0
    items = json.loads(result.stdout)
    assert [item["id"] for item in items] == template_ids()
    for item in items:
        assert {"name", "description", "category", "duration_days", "tags", "nodes"} <= set(item)
        assert item["nodes"] == len(load_template(item["id"]).nodes)


def test_templates_show_prints_a_loadable_flow() -> None:
    result = runner.invoke(app, ["templates", "show", "lead_welcome_v1"])
    assert result.exit_code == 0
    flow = loads(result.stdout)
    assert flow == load_template("lead_welcome_v1")
    assert flow.validate().valid


def test_templates_show_unknown_id_exits_2() -> None:
    result = runner.invoke(app, ["templates", "show", "nope"])
    assert result.exit_code == 2
    assert "no template 'nope'" in result.stderr
    assert "lead_welcome_v1" in result.stderr


def test_no_arguments_prints_help() -> None:
    result = runner.invoke(app, [])
    assert "validate" in result.output
    assert "templates" in result.output
