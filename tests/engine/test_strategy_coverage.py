"""The property test's strategies draw every registered node type.

A node type added to the registry without a way to draw it (and so without being compared
engine against reference) fails here, naming the type. Flows are only generated here, never
run, so this costs a few seconds."""

from __future__ import annotations

from flow_strategies import flows, revisions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mawb.nodes.registry import all_types
from mawb.validate import validate_flow

DRAWS = settings(max_examples=200, database=None, derandomize=True, deadline=None,
                 suppress_health_check=list(HealthCheck))


def test_strategies_draw_every_registered_type() -> None:
    seen: set[str] = set()

    @DRAWS
    @given(flows())
    def draw(flow: object) -> None:
        seen.update(node.type for node in flow.nodes)  # type: ignore[attr-defined]

    draw()
    registered = {cls.type for cls in all_types()}
    assert len(registered) == 23
    missing = sorted(registered - seen)
    assert not missing, f"flow_strategies never draws: {', '.join(missing)}"


def test_revisions_are_valid_next_versions() -> None:
    edits: set[str] = set()

    @settings(DRAWS, max_examples=60)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        flow = data.draw(flows())
        revised, mapping = data.draw(revisions(flow))
        assert revised.id == flow.id and revised.version == flow.version + 1
        report = validate_flow(revised)
        assert report.valid, report
        for old, new in (mapping or {}).items():
            assert flow.node(old).type == revised.node(new).type
        old_ids, new_ids = {n.id for n in flow.nodes}, {n.id for n in revised.nodes}
        edits.update(["added"] if new_ids - old_ids - set((mapping or {}).values()) else [])
        edits.update(["removed"] if old_ids - new_ids - set(mapping or {}) else [])
        edits.update(["mapped"] if mapping else [])
        edits.update(["stay"] if mapping is None else [])

    check()
    assert edits == {"added", "removed", "mapped", "stay"}
