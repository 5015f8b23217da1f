"""The flow file format: round trips, clear file errors, versioning and the builder API.

Flow files are the contract between the workbench, notebooks, the CLI and deployments, so every
template must survive JSON and YAML save/load unchanged, a malformed file must name itself and
the line:column of the problem, newer files are refused and older ones are upgraded by the
registered migrations in order.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

import mawb.model
from mawb.model import Flow, FlowFileError, from_document, json_schema, load, loads, migrate
from mawb.templates import load_template, template_ids

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("template_id", template_ids())
@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_every_template_round_trips_through_json_and_yaml(
    template_id: str, suffix: str, tmp_path: Path
) -> None:
    flow = load_template(template_id)
    path = flow.save(tmp_path / "nested" / f"{template_id}{suffix}")
    assert path.exists()
    assert not list(path.parent.glob(".*.tmp")), "atomic save leaves no temporary file"
    again = load(path)
    assert again == flow
    assert again.to_dict() == flow.to_dict()
    if suffix == ".json":
        assert json.loads(path.read_text(encoding="utf-8")) == flow.to_dict()
    else:
        assert not path.read_text(encoding="utf-8").lstrip().startswith("{")


def test_loads_reads_json_and_yaml_text() -> None:
    flow = load_template("lead_welcome_v1")
    assert loads(flow.to_json()) == flow
    import yaml

    assert loads(yaml.safe_dump(flow.to_dict()), fmt="yaml") == flow


def test_non_ascii_text_survives_a_round_trip(tmp_path: Path) -> None:
    flow = Flow.new("accents", name="Bienvenue à l'équipe 🎉").add("start", "manual_trigger")
    for suffix in (".json", ".yaml"):
        assert load(flow.save(tmp_path / f"f{suffix}")).name == "Bienvenue à l'équipe 🎉"


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("broken.json", '{\n  "id": "x",\n  "nodes": [\n    {"id": "a",}\n  ]\n}\n', "4:16"),
        ("trailing.json", '{"id": "x"}\n}', "2:1"),
        ("tabs.yaml", "id: x\nnodes:\n\t- id: a\n", "3:1"),
        ("unclosed.yml", 'id: x\nname: "never closed\n', "3:1"),
    ],
)
def test_malformed_files_name_the_file_and_line_column(
    name: str, text: str, where: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlowFileError) as caught:
        load(path)
    error = caught.value
    assert error.source == str(path)
    assert error.where == where
    assert str(error).startswith(f"{path}:{where}: ")


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(FlowFileError, match="object at the top level") as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_unreadable_file_is_a_flow_file_error(tmp_path: Path) -> None:
    with pytest.raises(FlowFileError, match="cannot read file"):
        load(tmp_path / "missing.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(FlowFileError, match="cannot read file"):
        load(binary)


def test_shape_errors_name_the_node_and_field(tmp_path: Path) -> None:
    path = tmp_path / "shape.json"
    document = {"id": "x", "nodes": [{"id": "start", "type": "manual_trigger", "colour": "red"}]}
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(FlowFileError) as caught:
        load(path)
    assert str(caught.value) == f"{path}: node 'start' field colour: Extra inputs are not permitted"


def test_a_future_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.json"
    path.write_text(json.dumps({"schema_version": 2, "id": "x"}), encoding="utf-8")
    with pytest.raises(FlowFileError, match=r"schema_version 2 is newer .* upgrade mawb") as caught:
        load(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("version", ["1", 1.0, True, None])
def test_schema_version_must_be_an_integer(version: Any) -> None:
    with pytest.raises(FlowFileError, match="schema_version must be an integer"):
        migrate({"schema_version": version, "id": "x"})


def test_a_missing_schema_version_means_the_current_one() -> None:
    assert from_document({"id": "x"}).schema_version == mawb.model.SCHEMA_VERSION


def test_migrations_run_in_order_up_to_the_current_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []

    def rename_title(document: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        document["name"] = document.pop("title")
        return document

    def move_threshold(document: dict[str, Any]) -> dict[str, Any]:
        calls.append(2)
        assert document["schema_version"] == 2, "each step sees the previous step's version"
        document["params"] = {"threshold": document.pop("threshold")}
        return document

    monkeypatch.setattr(mawb.model, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(mawb.model, "MIGRATIONS", {2: move_threshold, 1: rename_title})
    original = {"schema_version": 1, "id": "old", "title": "Old flow", "threshold": 0.4}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(original), encoding="utf-8")

    flow = load(path)
    assert calls == [1, 2]
    assert flow.schema_version == 3
    assert flow.name == "Old flow"
    assert flow.params == {"threshold": 0.4}
    assert "title" in json.loads(path.read_text(encoding="utf-8")), "the file is not rewritten"


def test_a_missing_migration_step_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mawb.model, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(mawb.model, "MIGRATIONS", {1: lambda document: document})
    with pytest.raises(FlowFileError, match="no migration from schema_version 2"):
        migrate({"schema_version": 1, "id": "x"})


def test_builder_api_chains_and_builds_a_valid_flow() -> None:
    flow = (
        Flow.new("welcome", params={"threshold": 0.5})
        .add("start", "manual_trigger", list_name="vip")
        .add("hello", "email_send", label="Hello", subject="Hi {{ first_name }}", body="Welcome")
        .add("engaged", "if_condition", condition="engagement_score > :threshold")
        .add("offer", "sms_send", body="10% off")
        .connect("start", "hello")
        .connect("hello", "engaged")
        .connect("engaged", "offer", branch="true")
    )
    assert flow.name == "welcome"
    assert [n.id for n in flow.nodes] == ["start", "hello", "engaged", "offer"]
    assert flow.node("hello").label == "Hello"
    assert flow.node("start").params == {"list_name": "vip"}
    assert [e.target for e in flow.outgoing("engaged")] == ["offer"]
    assert [e.source for e in flow.incoming("engaged")] == ["hello"]
    assert flow.outgoing("engaged")[0].branch == "true"
    with pytest.raises(KeyError):
        flow.node("nope")
    report = flow.validate()
    assert report.valid, [str(d) for d in report.diagnostics]
    assert loads(flow.to_json()) == flow


def test_flow_validate_passes_columns_through() -> None:
    flow = Flow.new("cols").add("start", "time_based_trigger", audience="shoe_size > 40")
    assert flow.validate().valid
    codes = [d.code for d in flow.validate(columns={"email"}).diagnostics]
    assert codes == ["unknown_column"]


def test_layout_is_kept_apart_from_behaviour() -> None:
    flow = load_template("lead_welcome_v1")
    moved = flow.model_copy(deep=True)
    moved.ui.positions = {"start": (100.0, -40.0)}
    assert moved.validate() == flow.validate()
    assert loads(moved.to_json()).ui.positions == {"start": (100.0, -40.0)}


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"reentry": "sometimes"}, "settings.reentry"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "settings.quiet_hours.start"),
        ({"frequency_cap": {"max_messages": 0, "per_days": 7}}, "settings.frequency_cap"),
        ({"colour": "blue"}, "settings.colour"),
    ],
)
def test_settings_shape_errors_name_the_setting(settings: dict[str, Any], fragment: str) -> None:
    with pytest.raises(FlowFileError, match=fragment.replace(".", r"\.")):
        from_document({"id": "x", "settings": settings})


# -- JSON Schema ---------------------------------------------------------------------------------


def test_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    json.dumps(schema)  # serialisable as `mawb schema` prints it
    assert {"id", "nodes", "edges", "settings", "params"} <= set(schema["properties"])
    assert schema["required"] == ["id"]


@pytest.mark.parametrize("template_id", template_ids())
def test_every_template_validates_against_the_json_schema(template_id: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    document = load_template(template_id).to_dict()
    assert list(validator.iter_errors(document)) == []


def test_the_json_schema_rejects_what_the_model_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    document = load_template("lead_welcome_v1").to_dict()
    document["nodes"][0]["colour"] = "red"
    document["settings"]["reentry"] = "sometimes"
    paths = sorted(".".join(map(str, e.absolute_path)) for e in validator.iter_errors(document))
    assert paths == ["nodes.0", "settings.reentry"]
