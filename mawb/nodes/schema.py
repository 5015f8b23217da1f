"""The JSON Schema of a flow file with every node type spelled out (what `mawb schema` prints).

`mawb.model.json_schema()` describes the file format with `params` as an open object, since
the model layer knows nothing of node types. Here each registered node type becomes one
variant of `Node`, selected by its `type` (a discriminated union, spelt as one `if`/`then`
per type so that errors name the field, not "no variant matched"): the variant's `params` is
that type's pydantic params model (types, bounds, enums, descriptions, defaults), closed with
`additionalProperties: false` wherever the model forbids extra keys, and carries an example.
An editor pointed at this schema flags an unknown type, a misspelt param or a string where a
number belongs while the file is typed; `mawb validate` still does the checks a schema cannot
(conditions, templates, edges, reachability).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from mawb.model import json_schema
from mawb.nodes.registry import all_types

REF = "#/$defs/{model}"


def flow_schema() -> dict[str, Any]:
    """The flow file schema whose `nodes` items are a union over the registered types."""
    schema = json_schema()
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    types = all_types()
    refs, params_defs = models_json_schema(
        [(node_type.params_model, "validation") for node_type in types], ref_template=REF)
    for name, definition in params_defs.get("$defs", {}).items():
        if name in defs and defs[name] != definition:
            raise RuntimeError(f"params model {name} collides with a flow file definition")
        defs[name] = definition
    common = defs["Node"]["properties"]
    variants = {}
    for node_type in types:
        name = f"{node_type.type}_node"
        params = dict(refs[(node_type.params_model, "validation")])
        params["description"] = f"Settings of a {node_type.label} step"
        defs[name] = {
            "title": f"{node_type.label} ({node_type.type})",
            "description": node_type.help,
            "type": "object",
            "properties": {
                "id": common["id"],
                "type": {"const": node_type.type, "description": common["type"]["description"]},
                "label": common["label"],
                "params": params,
            },
            "required": ["id", "type"],
            "additionalProperties": False,
            "examples": [_example(node_type)],
        }
        variants[node_type.type] = f"#/$defs/{name}"
    defs["Node"] = {
        "title": "Node",
        "description": defs["Node"].get("description", ""),
        "type": "object",
        "properties": {"type": {"enum": sorted(variants),
                                "description": "Registered node type"}},
        "required": ["id", "type"],
        # if/then per type rather than oneOf: only the variant the `type` names is applied, so
        # a validator (and an editor) reports the misspelt param, not "matches no variant".
        "allOf": [{"if": {"properties": {"type": {"const": node_type}}, "required": ["type"]},
                   "then": {"$ref": ref}} for node_type, ref in variants.items()],
        "discriminator": {"propertyName": "type", "mapping": variants},
    }
    return schema


def _example(node_type: Any) -> dict[str, Any]:
    """A node of this type with its default params (those without a default are left out)."""
    try:
        params = node_type.params_model().model_dump(mode="json", exclude_none=True)
    except ValidationError:
        params = {}
    return {"id": node_type.type.replace("_", "-"), "type": node_type.type, "params": params}


__all__ = ["flow_schema"]
