"""The Experiments page: sliders from param types, a simulation with a chart, sweep, compare,
save as a version; and the run helpers behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import mawb
from mawb.ui import experiment_runs as runs
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


def test_param_controls_take_bounds_from_the_value_type() -> None:
    share = runs.param_control("engagement_threshold", 0.7)
    assert (share.kind, share.low, share.high, share.step) == ("float", 0.0, 1.0, 0.05)
    count = runs.param_control("max_attempts", 3)
    assert (count.kind, count.low, count.high, count.step) == ("int", 0, 12, 1)
    assert runs.param_control("score_threshold", 50).high == 200
    assert runs.param_control("flag", True).sweep_values() == [False, True]
    big = runs.param_control("cart", 150.0)
    assert big.kind == "float" and big.low <= 150.0 <= big.high
    assert share.sweep_values() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert count.sweep_values() == [0, 3, 6, 9, 12]


def test_sweep_values_are_parsed_in_the_param_type() -> None:
    count = runs.param_control("max_attempts", 3)
    assert runs.parse_sweep_values(count, "1, 2,2, 5") == [1, 2, 5]
    with pytest.raises(ValueError, match="invalid literal"):
        runs.parse_sweep_values(count, "1, two")
    with pytest.raises(ValueError, match="at least one"):
        runs.parse_sweep_values(count, " , ")
    assert runs.parse_sweep_values(runs.param_control("f", False), "true,false") == [True, False]


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
    app.button(key="exp_run").click().run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert int(metrics["Enrolled"]) > 0 and int(metrics["Messages sent"]) > 0
    charts = app.get("plotly_chart")
    assert len(charts) == 2 and "funnel" in charts[0].proto.spec.lower()
    app.button(key="exp_keep").click().run()
    app.slider(key=THRESHOLD).set_value(0.9).run()
    app.button(key="exp_run").click().run()
    app.button(key="exp_keep").click().run()
    table = app.dataframe[-1].value
    assert list(table.columns) == ["#1 engagement_threshold=0.2", "#2 engagement_threshold=0.9"]
    assert table.loc["enrolled"].nunique() == 1  # same population, same seed
    app.button(key="exp_save").click().run()
    assert not app.exception
    assert "Saved lead_welcome_v1 v1" in app.success[0].value
    assert VersionStore(home).load("lead_welcome_v1").params["engagement_threshold"] == 0.9


@pytest.mark.usefixtures("home")
def test_sweep_draws_conversions_against_messages() -> None:
    app = small_run(AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run())
    app.text_input(key="exp_sweep_values_lead_welcome_v1_engagement_threshold").input(
        "0.1, 0.95").run()
    app.button(key="exp_sweep_run").click().run()
    assert not app.exception
    spec = app.get("plotly_chart")[0].proto.spec
    assert "conversions vs messages" in spec
    table = app.dataframe[0].value
    assert list(table["value"]) == [0.1, 0.95]
    assert {"messages_sent", "converted_contacts", "conversion_rate"} <= set(table.columns)


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
