"""The Experiments page: sliders from param types, a simulation with a chart, sweep, compare,
save as a version; and the run helpers behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import mawb
from mawb.ui import experiment_runs as runs
from mawb.ui.param_ranges import param_control, parse_sweep_values
from mawb.versions import NothingToSaveError, VersionStore

PAGE = Path(__file__).resolve().parents[2] / "pages/4_Experiments.py"
TIMEOUT = 180
THRESHOLD = "exp_param_lead_welcome_v1_engagement_threshold"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAWB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def small_run(app: AppTest) -> AppTest:
    """Switch to a tiny synthetic population and one simulated day (keeps the test quick)."""
    app.radio(key="exp_population").set_value("Synthetic").run()
    app.number_input(key="exp_size").set_value(40).run()
    return app.number_input(key="exp_days").set_value(1).run()


def finish(app: AppTest) -> AppTest:
    """Wait for the simulation or sweep the page started beside it, then let the page take
    its result (a browser polls for it; AppTest has no timers)."""
    job = app.session_state[runs.STATE_KEY].get("job")
    assert job is not None, "no run was started"
    job.wait(TIMEOUT)
    return app.run()


def test_param_controls_take_bounds_from_the_value_type() -> None:
    share = param_control("engagement_threshold", 0.7)
    assert (share.kind, share.low, share.high, share.step) == ("float", 0.0, 1.0, 0.05)
    count = param_control("max_attempts", 3)
    assert (count.kind, count.low, count.high, count.step) == ("int", 0, 12, 1)
    assert param_control("score_threshold", 50).high == 200
    assert param_control("flag", True).sweep_values() == [False, True]
    big = param_control("cart", 150.0)
    assert big.kind == "float" and big.low <= 150.0 <= big.high
    assert share.sweep_values() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert count.sweep_values() == [0, 3, 6, 9, 12]


def test_sweep_values_are_parsed_in_the_param_type() -> None:
    count = param_control("max_attempts", 3)
    assert parse_sweep_values(count, "1, 2,2, 5") == [1, 2, 5]
    with pytest.raises(ValueError, match="invalid literal"):
        parse_sweep_values(count, "1, two")
    with pytest.raises(ValueError, match="at least one"):
        parse_sweep_values(count, " , ")
    assert parse_sweep_values(param_control("f", False), "true,false") == [True, False]


def test_saving_params_makes_a_new_version_once(home: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    saved = runs.save_params(flow, {"engagement_threshold": 0.55}, "tuned", home)
    assert (saved.version, saved.params["engagement_threshold"]) == (1, 0.55)
    again = runs.save_params(saved, {"engagement_threshold": 0.6}, "tuned more", home)
    assert again.version == 2
    with pytest.raises(NothingToSaveError):
        runs.save_params(again, {"engagement_threshold": 0.6}, "same", home)
    assert [info.message for info in VersionStore(home).history(flow.id)] == ["tuned more",
                                                                              "tuned"]


@pytest.mark.usefixtures("home")
def test_first_start_shows_the_flow_and_its_sliders() -> None:
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not app.exception
    assert app.selectbox(key="exp_template").value == "lead_welcome_v1"
    assert app.slider(key=THRESHOLD).value == 0.7
    assert (app.slider(key=THRESHOLD).min, app.slider(key=THRESHOLD).max) == (0.0, 1.0)
    assert app.radio(key="exp_source").options == ["Template"]  # no saved flow yet


def test_simulate_keep_compare_and_save(home: Path) -> None:
    app = small_run(AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run())
    app.slider(key=THRESHOLD).set_value(0.2).run()
    finish(app.button(key="exp_run").click().run())
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert int(metrics["Enrolled"]) > 0 and int(metrics["Messages sent"]) > 0
    assert metrics["Conversion rate"].endswith("%") or metrics["Conversion rate"] == "—"
    charts = app.get("plotly_chart")
    assert len(charts) == 2 and "funnel" in charts[0].proto.spec.lower()
    app.button(key="exp_keep").click().run()
    app.slider(key=THRESHOLD).set_value(0.9).run()
    finish(app.button(key="exp_run").click().run())
    app.button(key="exp_keep").click().run()
    # each run is labelled by everything that made it: flow, version, population, days, seed
    labels = next(m.value for m in app.markdown if m.value.startswith("- **#1"))
    assert "#1 lead_welcome_v1 v1 · 40 synthetic · 1 d · seed 0 · engagement_threshold=0.2" \
        in labels and "engagement_threshold=0.9" in labels
    table = app.dataframe[-1].value
    assert list(table.columns) == ["#1", "#2", "#2 vs #1"]
    assert table.loc["enrolled", "#1"] == table.loc["enrolled", "#2"]  # same population, seed
    assert table.loc["conversion_rate", "#2 vs #1"].endswith("pp")
    # small multiples: one panel, with its own axis, per metric
    import json

    figure = json.loads(app.get("plotly_chart")[-1].proto.spec)
    assert len([k for k in figure["layout"] if k.startswith("yaxis")]) == len(runs.PANELS)
    app.button(key="exp_save").click().run()
    assert not app.exception
    assert "Saved lead_welcome_v1 v1" in app.success[0].value
    assert VersionStore(home).load("lead_welcome_v1").params["engagement_threshold"] == 0.9


@pytest.mark.usefixtures("home")
def test_sweep_draws_conversions_against_messages() -> None:
    app = small_run(AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run())
    app.text_input(key="exp_sweep_values_lead_welcome_v1_engagement_threshold").input(
        "0.1, 0.95").run()
    finish(app.button(key="exp_sweep_run").click().run())
    assert not app.exception
    spec = app.get("plotly_chart")[0].proto.spec
    assert "converted contacts vs messages sent" in spec
    table = app.dataframe[0].value
    assert list(table["value"]) == [0.1, 0.95]
    assert {"messages_sent", "converted", "conversion_rate"} <= set(table.columns)


@pytest.mark.usefixtures("home")
def test_builder_draft_is_offered_first() -> None:
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    draft = mawb.load_template("win_back_v1").model_copy(update={"id": "my_draft"})
    app.session_state["mawb_flow"] = draft
    app.run()
    assert not app.exception
    assert app.radio(key="exp_source").value == "From the Builder"
    assert {slider.label for slider in app.slider} == {"inactive_days", "max_attempts"}


@pytest.mark.usefixtures("home")
def test_invalid_upload_lists_problems() -> None:
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    app.radio(key="exp_population").set_value("Upload a file").run()
    assert any("Upload a contacts file" in info.value for info in app.info)
    app.file_uploader(key="exp_upload").set_value(
        ("people.csv", b"email\nx@example.com\n", "text/csv")).run()
    assert not app.exception
    assert "problem(s) in people.csv" in app.error[0].value
    assert "contact_id" in set(app.dataframe[-1].value["column"])
    assert not [button for button in app.button if button.key == "exp_run"]


def test_workspace_contacts_and_a_segment_are_populations(tmp_path: Path) -> None:
    from mawb.data import synthetic_contacts
    from mawb.engine import Workspace

    home = tmp_path / "ws"
    contacts = synthetic_contacts(60, seed=2)
    Workspace(home).import_contacts(contacts)
    everyone = runs.workspace_population(home)
    assert len(everyone.contacts) == 60 and "60" in everyone.label
    leads = runs.workspace_population(home, "lifecycle = 'lead'")
    assert len(leads.contacts) == int((contacts["lifecycle"] == "lead").sum()) > 0
    with pytest.raises(ValueError, match="segment"):
        runs.workspace_population(home, "no_such_column > 1")
    with pytest.raises(ValueError, match="segment"):
        runs.workspace_population(home, "1; DROP TABLE contacts")


def test_a_run_that_enrols_nobody_says_why() -> None:
    flow = mawb.load_template("lead_welcome_v1")
    nobody = runs.builtin_population("synthetic", 20)
    nobody = runs.Population("20 customers", nobody.contacts.assign(lifecycle="customer"))
    variant = runs.run_variant(flow, nobody, params={}, days=1)
    assert variant.summary["enrolled"] == 0
    assert "matched the audience `lifecycle = 'lead'`" in (variant.why_empty or "")
    event_flow = mawb.load_template("trial_to_paid_v1")
    trigger = next(n for n in event_flow.nodes if n.type == "event_trigger")
    reason = runs.why_nobody_entered(event_flow, nobody)
    assert f"no contact has a {trigger.params['event']} event in 20 customers" in reason
