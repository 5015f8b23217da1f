"""The Builder page's logic under Streamlit's AppTest, canvas edits simulated through the
component's session state (what the browser would send), against a temporary workspace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from streamlit.testing.v1 import AppTest

import mawb
from mawb.ui import builder_state as bs
from mawb.ui.flow_graph import flow_to_graph
from mawb.versions import VersionStore

if TYPE_CHECKING:
    from collections.abc import Iterator

PAGE = Path(__file__).resolve().parents[2] / "pages" / "1_Builder.py"
TIMEOUT = 60


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MAWB_HOME", str(tmp_path))
    yield tmp_path


@pytest.fixture
def app(home: Path) -> AppTest:
    test = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    test.run()
    assert not test.exception
    return test


def state_of(app: AppTest) -> bs.BuilderState:
    state = app.session_state[bs.STATE_KEY]
    assert isinstance(state, bs.BuilderState)
    return state


def send_canvas(app: AppTest, graph: dict[str, Any]) -> None:
    """What the canvas does after an edit: its state value holds the graph; the script reruns."""
    app.session_state[state_of(app).canvas_key] = {"graph": graph}
    app.run()
    assert not app.exception, app.exception


def node(node_id: str, node_type: str, x: int, params: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "position": {"x": x, "y": 0},
            "data": {"label": node_type, "category": "action", "params": params or {}}}


def edge(source: str, target: str, handle: str | None = None) -> dict[str, Any]:
    return {"id": f"{source}-{handle}-{target}", "source": source, "target": target,
            "sourceHandle": handle}


def diagnostics(app: AppTest) -> list[dict[str, Any]]:
    frames = [frame.value for frame in app.dataframe if "problem" in frame.value.columns]
    return frames[0].to_dict("records") if frames else []


def texts(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [s.value for s in app.success]
    parts += [i.value for i in app.info] + [e.value for e in app.error]
    return "\n".join(str(part) for part in parts)


def only_loose_branches(found: list[dict[str, Any]]) -> bool:
    """Valid: nothing but the warning about a branching step whose handles lead nowhere yet
    (these small flows stop at an if-node on purpose)."""
    return all(d["severity"] == "warning" and d["code"] == "unconnected_branch" for d in found)


def test_empty_workspace_opens_an_empty_flow_that_says_what_to_do(app: AppTest) -> None:
    assert "drag a **trigger**" in texts(app)
    assert [d["code"] for d in diagnostics(app)] == ["no_trigger"]
    assert state_of(app).flow.nodes == []


def test_canvas_edits_are_validated_live(app: AppTest) -> None:
    graph = {"nodes": [node("start", "event_trigger", 0), node("check", "if_condition", 300),
                       node("yes", "email_send", 600), node("no", "sms_send", 600)],
             "edges": [edge("start", "check"), edge("check", "yes", "true")], "selected": None}
    send_canvas(app, graph)
    problems = diagnostics(app)
    assert [(d["node"], d["code"]) for d in problems] == [("no", "unreachable")]
    # Python draws the error on the node it sends back to the canvas.
    drawn = flow_to_graph(state_of(app).flow, diagnostics=mawb.validate_flow(
        state_of(app).flow).diagnostics)
    assert next(n for n in drawn["nodes"] if n["id"] == "no")["data"]["error"]
    graph["edges"].append(edge("check", "no", "false"))
    send_canvas(app, graph)
    assert diagnostics(app) == []
    assert "this flow is valid" in texts(app)
    flow = state_of(app).flow
    assert [(e.source, e.target, e.branch) for e in flow.edges][-1] == ("check", "no", "false")


def test_config_panel_edits_params_with_live_errors(app: AppTest) -> None:
    graph = {"nodes": [node("start", "manual_trigger", 0), node("check", "if_condition", 300)],
             "edges": [edge("start", "check")], "selected": "check"}
    send_canvas(app, graph)
    prefix = f"{state_of(app).inputs_key}::check"
    condition = app.text_input(key=f"{prefix}::condition")
    assert condition.value == "engagement_score > 0.5"  # the params model's default
    condition.set_value("").run()
    assert "**condition**: should not be empty" in texts(app)  # plain words, no pydantic
    assert [d["code"] for d in diagnostics(app)] == ["bad_params"]
    app.text_input(key=f"{prefix}::condition").set_value("lead_score >= 50").run()
    assert only_loose_branches(diagnostics(app))
    assert state_of(app).flow.node("check").params == {"condition": "lead_score >= 50"}
    app.text_input(key=f"{prefix}::label").set_value("Hot lead?").run()
    assert state_of(app).flow.node("check").label == "Hot lead?"


def save(app: AppTest, message: str) -> None:
    field = next(t for t in app.text_input if t.label == "What changed?")
    field.set_value(message)
    next(b for b in app.button if b.label == "Save version").click().run()
    assert not app.exception, app.exception


def test_save_history_diff_and_rollback(app: AppTest, home: Path) -> None:
    graph = {"nodes": [node("start", "manual_trigger", 0),
                       node("hello", "email_send", 300, {"subject": "Hi"})],
             "edges": [edge("start", "hello")], "selected": "hello"}
    send_canvas(app, graph)
    save(app, "first cut")
    assert VersionStore(home).versions("new_flow") == [1]
    assert "Saved new_flow v1: first version" in texts(app)
    state = state_of(app)
    assert state.based_on == 1 and not state.dirty
    # Select the email again and change its subject, then save v2: the diff names the param.
    send_canvas(app, {**flow_to_graph(state.flow), "selected": "hello"})
    key = f"{state_of(app).inputs_key}::hello::subject"
    app.text_input(key=key).set_value("Welcome aboard").run()
    assert state_of(app).dirty
    save(app, "friendlier subject")
    assert "1 param changed" in texts(app)
    assert [w.value for w in app.warning] == []
    history = next(f.value for f in app.dataframe if "message" in f.value.columns)
    assert history["message"].tolist() == ["friendlier subject", "first cut"]
    changes = next(f.value for f in app.dataframe if "subject" in f.value.columns)
    assert changes.to_dict("records") == [{"change": "changed", "item": "param",
                                           "subject": "hello.subject", "before": "Hi",
                                           "after": "Welcome aboard"}]
    # Roll back to v1: saved again as v3, and the draft shows the old subject.
    next(b for b in app.button if b.label == "Roll back").click().run()
    assert VersionStore(home).versions("new_flow") == [1, 2, 3]
    first = VersionStore(home).load("new_flow", 1).node("hello").params
    assert state_of(app).flow.node("hello").params == first
    assert first["subject"] == "Hi"
    assert "v3 has the content of v1" in texts(app)


def test_invalid_flow_cannot_be_saved(app: AppTest, home: Path) -> None:
    send_canvas(app, {"nodes": [node("hello", "email_send", 0)], "edges": [], "selected": None})
    button = next(b for b in app.button if b.label == "Save version")
    assert button.disabled
    assert VersionStore(home).versions("new_flow") == []


def test_compile_previews_the_dag(home: Path) -> None:
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    app.session_state[bs.SHARED_FLOW_KEY] = mawb.load_template("lead_welcome_v1")
    app.run()
    assert "Builder · " in app.header[0].value
    assert state_of(app).flow.id == "lead_welcome_v1"
    next(b for b in app.button if b.label == "Compile to an Airflow DAG").click().run()
    source = app.code[0].value
    assert "from airflow.sdk import" in source and "lead_welcome_v1" in source
    compile(source, "mawb_lead_welcome_v1.py", "exec")
    # the download is a bundle: the DAG, the flow file it loads and the partitions' pools
    # (+ pod settings on Kubernetes)
    _, (bundle, names, _) = state_of(app).compiled
    assert names == ["mawb_lead_welcome_v1.json", "mawb_lead_welcome_v1.py", "mawb_pools.json"]
    app.toggle(key="dag_kubernetes").set_value(True)
    app.number_input(key="dag_partitions").set_value(4)
    app.text_input(key="dag_schedule").set_value("1h").run()
    assert any("changed since this DAG was compiled" in w.value for w in app.warning)
    next(b for b in app.button if b.label == "Compile to an Airflow DAG").click().run()
    _, (bundle, names, source) = state_of(app).compiled
    assert "mawb_lead_welcome_v1.json" in names and len(names) == 4
    assert "KubernetesPodOperator" in source
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        assert sorted(archive.namelist()) == names


def test_auto_layout_and_opening_a_saved_flow(home: Path) -> None:
    VersionStore(home).save(mawb.load_template("win_back_v1"), "seeded")
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    app.run()
    state = state_of(app)
    assert (state.flow.id, state.based_on) == ("win_back_v1", 1)
    before = state.canvas_key
    send_canvas(app, {**flow_to_graph(state.flow), "selected": None})
    next(b for b in app.button if b.label == "Auto layout").click().run()
    assert state_of(app).canvas_key != before
    assert before not in app.session_state  # the replaced canvas's graph is let go
    assert not app.exception


def test_flow_settings_define_params_and_behaviour(app: AppTest) -> None:
    graph = {"nodes": [node("start", "manual_trigger", 0),
                       node("check", "if_condition", 300, {"condition": "score > :limit"})],
             "edges": [edge("start", "check")], "selected": None}
    send_canvas(app, graph)
    # the if-node has no edge out yet: a warning next to the error
    assert [d["code"] for d in diagnostics(app)] == ["unknown_param", "unconnected_branch"]
    prefix = state_of(app).inputs_key
    app.toggle(key=f"{prefix}::flow_params_as_json").set_value(True).run()
    app.text_input(key=f"{prefix}::flow_params").set_value('{"limit": 3').run()
    assert "Params: not valid JSON" in texts(app)
    # The Validation panel says the same, from the draft's one validation.
    assert any(d["code"] == "unreadable_input" and "not valid JSON" in d["problem"]
               for d in diagnostics(app))
    app.text_input(key=f"{prefix}::flow_params").set_value('{"limit": 3}').run()
    assert only_loose_branches(diagnostics(app))
    assert state_of(app).flow.params == {"limit": 3}
    app.selectbox(key=f"{prefix}::settings::reentry").set_value("always").run()
    app.text_input(key=f"{prefix}::flow_name").set_value("Scored welcome").run()
    flow = state_of(app).flow
    assert flow.settings.reentry == "always" and flow.name == "Scored welcome"
    app.text_input(key=f"{prefix}::settings::tick").set_value("soon").run()
    assert [d["code"] for d in diagnostics(app)] == ["bad_settings", "unconnected_branch"]


def test_simulate_hands_the_draft_to_the_experiments_page(app: AppTest) -> None:
    send_canvas(app, {"nodes": [node("start", "manual_trigger", 0)], "edges": [],
                      "selected": None})
    next(b for b in app.button if b.label == "Simulate").click().run()
    shared = app.session_state[bs.SHARED_FLOW_KEY]
    assert isinstance(shared, mawb.Flow)
    assert [n.id for n in shared.nodes] == ["start"]
    assert shared is not state_of(app).flow


def test_home_page_summarises_the_workspace_and_links_pages(home: Path) -> None:
    VersionStore(home).save(mawb.load_template("win_back_v1"), "seeded")
    app = AppTest.from_file(str(PAGE.parents[1] / "app.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception
    assert "Marketing Automation Workbench" in app.title[0].value
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Saved flows"] == "1" and metrics["Contacts"] == "—"
    flows = app.dataframe[0].value
    assert flows["flow"].tolist() == ["win_back_v1"]
    assert flows["last message"].tolist() == ["seeded"]
    assert "No store yet" in texts(app)


def test_a_damaged_saved_flow_does_not_break_the_pages(home: Path) -> None:
    store = VersionStore(home)
    store.save(mawb.load_template("win_back_v1"), "seeded")
    store.path("win_back_v1", 2).write_text("{broken", encoding="utf-8")
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception
    assert "Could not open win_back_v1" in texts(app)
    assert state_of(app).flow.id == bs.NEW_FLOW_ID
    home_page = AppTest.from_file(str(PAGE.parents[1] / "app.py"), default_timeout=TIMEOUT)
    home_page.run()
    assert not home_page.exception
    assert home_page.dataframe[0].value["name"].tolist() == ["(unreadable)"]
