"""Node behaviour lives on the registered type: every type has a step and declares what the
engine, compiler and UI ask of it, and a new type with the right attributes behaves like the
built-in one it resembles without any module knowing its name."""

from __future__ import annotations

import pytest

from mawb import nodes
from mawb.engine import enroll, render
from mawb.engine.steps import StepError, step_for
from mawb.flowplan import plan
from mawb.model import Flow
from mawb.nodes.base import Category, Message, NodeType, Outputs, TriggerKind
from mawb.nodes.logic import LoopIterator
from mawb.nodes.registry import register, unregister
from mawb.validate import validate_flow

ALL = nodes.all_types()


@pytest.mark.parametrize("node_type", ALL, ids=[t.type for t in ALL])
def test_every_registered_type_has_a_step_and_its_behaviour(node_type: type[NodeType]) -> None:
    if node_type.is_trigger():
        assert isinstance(node_type.trigger_kind, TriggerKind)
        assert node_type.trigger_kind in enroll._CANDIDATES  # how it finds its contacts
        assert node_type.message is None and node_type.outbox_channel is None
    else:
        assert node_type.trigger_kind is None
        assert callable(step_for(node_type))
    # A type that sends says on which outbox channel and what the row holds, and the
    # renderer can build that row; a type that does not send has neither.
    assert (node_type.message is None) == (node_type.outbox_channel is None)
    if node_type.message is not None:
        assert isinstance(node_type.message, Message)
        assert node_type.message in render._SPECS
    assert isinstance(node_type.is_loop, bool) and isinstance(node_type.is_merge, bool)
    assert isinstance(node_type.every_tick, bool)
    if node_type.is_loop:
        assert {"body", "done"} <= set(node_type.fixed_branches)


def test_the_built_in_behaviour_flags() -> None:
    by_name = {t.type: t for t in ALL}
    assert {t.type for t in ALL if t.is_loop} == {"loop_iterator"}
    assert {t.type for t in ALL if t.is_merge} == {"merge_branches"}
    assert {t.type for t in ALL if t.every_tick} == {"condition_check", "merge_branches"}
    assert {t.type for t in ALL if t.listens_to_events()} == {"event_trigger", "webhook_trigger"}
    assert by_name["external_api"].outbox_channel == by_name["api_call"].outbox_channel == "api"
    assert by_name["webhook_call"].outbox_channel == "webhook"
    assert {t.type for t in ALL if t.is_trigger()} == {
        t.type for t in ALL if t.category is Category.TRIGGER}


def test_a_registered_type_without_a_step_is_refused_by_name() -> None:
    @register
    class Stepless(NodeType):
        type = "test_stepless"
        category = Category.ACTION
        label = "Stepless"
        icon = "zap"
        help = "A type the engine has no step for."
        params_model = nodes.get("parallel_execution").params_model
        outputs = Outputs.SINGLE

    try:
        with pytest.raises(StepError, match="test_stepless"):
            step_for(Stepless)
    finally:
        unregister("test_stepless")


def test_a_new_loop_type_is_a_loop_because_its_class_says_so() -> None:
    """A plugin loop (another name, `is_loop` inherited) closes loops, runs in order and
    validates like the built-in one: nothing compares the name `loop_iterator`."""

    @register
    class Repeat(LoopIterator):
        type = "test_repeat"

    def flow(loop_type: str) -> Flow:
        return (Flow.new("loopy").add("start", "manual_trigger").add("again", loop_type)
                .add("wait", "delay_action", days=1).add("end", "data_update", set={"x": 1})
                .connect("start", "again").connect("again", "wait", "body")
                .connect("wait", "again").connect("again", "end", "done"))

    try:
        built_in, plugin = plan(flow("loop_iterator")), plan(flow("test_repeat"))
        assert plugin.back_edges == built_in.back_edges == {("wait", "again", None)}
        assert plugin.order == built_in.order == ("start", "again", "wait", "end")
        assert plugin.returning["again"] == {"wait"}
        assert validate_flow(flow("test_repeat")).valid
    finally:
        unregister("test_repeat")
    # With the type gone the cached plan is not reused: the node is of an unknown type now.
    assert "again" not in plan(flow("test_repeat")).types


def test_the_plan_is_shared_by_equal_flows_and_rebuilt_after_an_edit() -> None:
    base = (Flow.new("shared").add("start", "manual_trigger").add("go", "if_condition",
                                                                   condition="score > :t")
            .connect("start", "go"))
    base.params["t"] = 1
    copy = base.model_copy(update={"params": {"t": 5}}, deep=True)
    assert plan(copy) is plan(base)  # param values do not change what the flow means
    assert plan(base).params_of("go").condition == "score > :t"  # type: ignore[attr-defined]
    base.nodes[1].params["condition"] = "score < :t"  # edited in place
    assert plan(base).params_of("go").condition == "score < :t"  # type: ignore[attr-defined]
    assert plan(copy).params_of("go").condition == "score > :t"  # type: ignore[attr-defined]


def test_enroll_dispatches_on_the_trigger_kind() -> None:
    node = Flow.new("f").add("t", "manual_trigger").nodes[0]
    assert enroll.trigger_kind(node) is TriggerKind.MANUAL
    with pytest.raises(ValueError, match="not a trigger"):
        enroll.trigger_kind(Flow.new("f").add("d", "delay_action").nodes[0])
