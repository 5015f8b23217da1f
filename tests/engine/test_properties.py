"""The engine equals the per-contact reference interpreter on random flows and populations.

Each example deploys a random valid flow (drawn from all 23 node types; calls out go to the
sandbox or to a stub provider the reference answers identically), imports a random population
and event history, ticks the engine where its own `next_due` says (bounded) while the
reference runs the same ticks, and demands identical node logs (so funnels), enrollments and
their versions, tokens, outbox rows, messages, CRM records and attributes written by the flow.
The second property publishes a revised version in mid-flight (params, settings or nodes
changed, added, removed or renamed; contacts left to drain on their version, or moved with
the default or an explicit node mapping) under run overrides of the first version's params.

Both run derandomized (a fixed example sequence, so CI is reproducible and the duration is
stable) with a bounded example count; shrunk failures live on as regression tests in
test_regressions.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_harness import Publish, assert_same, run_both, scratch_home, written_attributes
from flow_strategies import flows, histories, populations, revisions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mawb.validate import validate_flow

pytestmark = pytest.mark.slow
PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(PROFILE, max_examples=25)
@given(data=st.data())
def test_engine_matches_reference(data: st.DataObject) -> None:
    flow = data.draw(flows(), label="flow")
    report = validate_flow(flow)
    assert report.valid, report
    contacts = data.draw(populations(), label="contacts")
    events = data.draw(histories(contacts), label="events")
    with scratch_home() as home:
        pair = run_both(flow, contacts, events, Path(home), max_ticks=25)
    assert_same(pair, written_attributes(flow))


@settings(PROFILE, max_examples=8)
@given(data=st.data())
def test_engine_matches_reference_across_versions(data: st.DataObject) -> None:
    flow = data.draw(flows(), label="flow")
    revised, mapping = data.draw(revisions(flow), label="revision")
    after = data.draw(st.integers(1, 4), label="published after tick")
    params = data.draw(st.sampled_from([None, {"threshold": 45}]), label="v1 run params")
    contacts = data.draw(populations(size=(5, 25)), label="contacts")
    events = data.draw(histories(contacts), label="events")
    with scratch_home() as home:
        pair = run_both(flow, contacts, events, Path(home), max_ticks=20, params=params,
                        publish=Publish(revised, after, mapping))
    assert_same(pair, written_attributes(flow, revised))
