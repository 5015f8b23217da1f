"""`mawb schema`: a schema editors can use, with every node type and its params.

Every template file in `templates/` validates against it with a standard Draft 2020-12
validator; broken copies (unknown type, misspelt param, a string where a number belongs)
fail at the right place; and the model's own diagnostics still name node and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from mawb.cli import app
from mawb.nodes.registry import all_types
from mawb.nodes.schema import flow_schema
from mawb.validate import validate_document

TEMPLATES = sorted((Path(__file__).parents[2] / "templates").glob("*.json"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == json.loads(json.dumps(flow_schema()))  # the command prints this schema
    return printed


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, document: dict[str, Any]
           ) -> list[tuple[str, str]]:
    return sorted((".".join(map(str, e.absolute_path)), e.message)
                  for e in validator.iter_errors(document))


def template(name: str) -> dict[str, Any]:
    return json.loads((Path(__file__).parents[2] / "templates" / f"{name}.json").read_text())


def test_the_schema_is_a_discriminated_union_over_every_node_type(
        schema: dict[str, Any]) -> None:
    node = schema["$defs"]["Node"]
    registered = sorted(t.type for t in all_types())
    assert len(registered) == 23
    assert node["properties"]["type"]["enum"] == registered
    assert node["discriminator"]["propertyName"] == "type"
    assert sorted(node["discriminator"]["mapping"]) == registered
    assert [rule["if"]["properties"]["type"]["const"] for rule in node["allOf"]] == [
        t.type for t in all_types()]
    delay = schema["$defs"]["delay_action_node"]
    assert delay["properties"]["type"] == {"const": "delay_action",
                                           "description": "Registered node type, e.g. email_send"}
    params = schema["$defs"][delay["properties"]["params"]["$ref"].split("/")[-1]]
    assert params["additionalProperties"] is False
    assert params["properties"]["days"]["maximum"] == 3650
    assert params["properties"]["days"]["description"] == "Days to wait"
    assert delay["examples"][0]["type"] == "delay_action"


def test_every_example_is_a_valid_node(schema: dict[str, Any]) -> None:
    node = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/Node"})
    examples = [e for d in schema["$defs"].values() for e in d.get("examples", [])]
    assert len(examples) == 23
    assert [list(node.iter_errors(example)) for example in examples] == [[]] * 23


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_every_template_file_validates(validator: jsonschema.Draft202012Validator,
                                       path: Path) -> None:
    assert errors(validator, json.loads(path.read_text())) == []


def test_an_unknown_type_fails(validator: jsonschema.Draft202012Validator) -> None:
    document = template("lead_welcome_v1")
    document["nodes"][1]["type"] = "emial_send"
    found = errors(validator, document)
    assert ("nodes.1.type", f"'emial_send' is not one of {sorted(t.type for t in all_types())}"
            ) in found


def test_a_misspelt_param_fails(validator: jsonschema.Draft202012Validator) -> None:
    document = template("lead_welcome_v1")
    welcome = document["nodes"][1]
    assert welcome["type"] == "email_send"
    welcome["params"]["subjet"] = welcome["params"].pop("subject")
    found = errors(validator, document)
    assert found and all(path.startswith("nodes.1") for path, _ in found)
    best = jsonschema.exceptions.best_match(validator.iter_errors(document))
    assert "'subjet' was unexpected" in best.message


def test_a_string_where_a_number_belongs_fails(validator: jsonschema.Draft202012Validator
                                               ) -> None:
    document = template("lead_welcome_v1")
    wait = document["nodes"][2]
    assert wait["type"] == "delay_action"
    wait["params"]["days"] = "three"
    best = jsonschema.exceptions.best_match(validator.iter_errors(document))
    assert ".".join(map(str, best.absolute_path)) == "nodes.2.params.days"
    assert "'three' is not of type 'number'" in best.message
    wait["params"]["days"] = 99999  # above the model's bound
    best = jsonschema.exceptions.best_match(validator.iter_errors(document))
    assert "99999 is greater than the maximum of 3650" in best.message


def test_model_diagnostics_still_name_node_and_field() -> None:
    document = template("lead_welcome_v1")
    document["nodes"][2]["params"]["days"] = "three"
    report = validate_document(document)
    assert not report.valid
    (error,) = report.errors
    assert error.node_id == document["nodes"][2]["id"]
    assert error.field == "params.days"


def test_a_flow_file_may_name_its_schema(tmp_path: Path,
                                         validator: jsonschema.Draft202012Validator) -> None:
    """The `"$schema"` key an editor uses is valid in the schema and ignored by mawb."""
    document = {"$schema": "./mawb-flow.schema.json", **template("lead_welcome_v1")}
    assert errors(validator, document) == []
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(document))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
