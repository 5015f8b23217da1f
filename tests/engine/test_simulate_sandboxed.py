"""A simulation never delivers for real, whatever connections the flow names."""

from __future__ import annotations

import mawb
from mawb.simulate import sandboxed


def _connected_welcome():
    flow = mawb.load_template("lead_welcome_v1")
    settings = flow.settings.model_copy(update={"connections": {"email": "mail"}})
    nodes = [node.model_copy(update={"params": {**node.params, "connection": "mail"}})
             if node.type == "email_send" else node for node in flow.nodes]
    return flow.model_copy(update={"settings": settings, "nodes": nodes})


def test_connections_are_removed_for_simulation():
    flow = sandboxed(_connected_welcome())
    assert flow.settings.connections == {}
    assert all("connection" not in node.params for node in flow.nodes)


def test_a_connected_flow_simulates_through_the_sandbox():
    connected = _connected_welcome()
    plain = mawb.load_template("lead_welcome_v1")
    results = [mawb.simulate(flow, 60, days=4, seed=3, progress=False)
               for flow in (connected, plain)]
    sent = [result.summary["messages_sent"] for result in results]
    assert sent[0] == sent[1] > 0
