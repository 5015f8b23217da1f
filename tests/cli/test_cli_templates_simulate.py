"""Every template runs through `mawb simulate` with a plausible funnel.

A small seeded population with three weeks of behaviour history (the same generator as the
demo set) feeds each template for its own duration with `--responses none`, so the run is
exact and cheap. Plausible means: contacts enter through a trigger and reach at least half of
the nodes, messages go out, nobody leaves a node they never entered, nothing fails, and
contacts still waiting sit where the flow waits (delays, condition checks, loop bodies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cli_helpers import cli_json

import mawb
from mawb import nodes
from mawb.data import synthetic_contacts, synthetic_events, write_csv
from mawb.nodes.base import Category

if TYPE_CHECKING:
    from pathlib import Path

WAITING_TYPES = {"delay_action", "condition_check", "merge_branches", "loop_iterator"}


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("population")
    contacts = synthetic_contacts(400, seed=1)
    events = synthetic_events(contacts, days=21, seed=1)
    return write_csv(contacts, folder / "contacts.csv"), write_csv(events, folder / "events.csv")


@pytest.mark.parametrize("template_id", mawb.template_ids())
def test_template_simulates_with_a_plausible_funnel(
    template_id: str, population: tuple[Path, Path]
) -> None:
    flow = mawb.load_template(template_id)
    contacts, events = population
    days = flow.metadata.duration_days or 14
    data = cli_json("simulate", template_id, "--contacts", contacts, "--events", events,
                    "--days", days, "--responses", "none")
    funnel = data["funnel"]
    assert list(funnel) == [node.id for node in flow.nodes]
    types = {node.id: node.type for node in flow.nodes}
    triggers = [n for n in funnel if nodes.get(types[n]).category is Category.TRIGGER]
    assert sum(funnel[n]["entered"] for n in triggers) > 0, "nobody was enrolled"
    reached = [n for n, counts in funnel.items() if counts["entered"] > 0]
    assert len(reached) >= len(funnel) / 2, f"only {reached} were reached"
    assert sum(data["messages"].values()) > 0, "no message was sent"
    for node_id, counts in funnel.items():
        assert counts["failed"] == 0, node_id
        assert counts["completed"] + counts["waiting"] <= counts["entered"] + (
            2 * counts["entered"] if types[node_id] == "merge_branches" else 0), node_id
        if counts["waiting"]:
            assert types[node_id] in WAITING_TYPES, f"{node_id} holds contacts"
    assert data["summary"]["enrolled"] == sum(funnel[n]["entered"] for n in triggers)
