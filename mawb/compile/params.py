"""Flow params as Airflow DAG `Param`s: typed as the flow file types them, described by use.

Airflow checks the values of a triggered run against each Param's JSON type; the description
(shown in the trigger form) says which conditions read the param, so an operator changing a
threshold for one run sees what it affects.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from mawb.compile import source
from mawb.expr import parse_condition
from mawb.flowplan import plan

if TYPE_CHECKING:
    from mawb.model import Flow

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def params_block(flow: Flow) -> str:
    """Flow params as DAG params: typed as the flow file types them (Airflow checks the values
    of a triggered run), described by where the flow uses them."""
    if not flow.params:
        return "PARAMS: dict[str, Param] = {}"
    uses = param_uses(flow)
    lines = ["PARAMS = {"]
    for name, value in flow.params.items():
        kind = _JSON_TYPES[type(value)]
        where = ", ".join(uses.get(name, []))
        description = f"Used by {where}" if where else "Not used by any condition of the flow"
        line = (
            f'    "{name}": Param({source.literal(value)}, type="{kind}", '
            f"description={source.string(description)}),"
        )
        if len(line) > source.LINE_LENGTH:
            value_code = (
                source.long_string(value, 8, 2) if isinstance(value, str) else source.literal(value)
            )
            described = source.long_string(description, 20, 2)
            line = (
                f'    "{name}": Param(\n        {value_code},\n        type="{kind}",\n'
                f"        description={described},\n    ),"
            )
        lines.append(line)
    lines.append("}")
    return "\n".join(lines)


def param_uses(flow: Flow) -> dict[str, list[str]]:
    """Where each flow param appears: `node.field` of the conditions that name it, and `goal`."""
    uses: dict[str, list[str]] = defaultdict(list)
    conditions = []
    planned = plan(flow)
    for node in flow.nodes:
        found = planned.types[node.id].conditions(planned.params[node.id])
        conditions += [(f"{node.id}.{field}", text) for field, text in found.items()]
    if flow.settings.goal:
        conditions.append(("the goal", flow.settings.goal))
    for place, text in conditions:
        for name in sorted(parse_condition(text).params):
            uses[name].append(place)
    return uses
