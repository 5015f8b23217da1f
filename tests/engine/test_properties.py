"""The engine equals the per-contact reference interpreter on random flows and populations.

Each example deploys a random valid flow, imports a random population and event history,
ticks the engine where its own `next_due` says (bounded) while the reference runs the same
ticks, and demands identical node logs (so funnels), enrollments, tokens, outbox rows,
messages and attributes written by the flow. Shrunk failures live on as regression tests in
test_regressions.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_harness import assert_same, run_both, scratch_home, written_attributes
from flow_strategies import flows, histories, populations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mawb.validate import validate_flow

pytestmark = pytest.mark.slow


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
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
