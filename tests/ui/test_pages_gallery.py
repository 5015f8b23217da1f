"""The Templates page: every template as a card with a preview, filters, "use this template"."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from ui_workspace import canvases

import mawb
from mawb.ui import gallery
from mawb.validate import validate_flow

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAWB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def gallery_app() -> AppTest:
    """The app with the gallery open (so switch_page resolves pages like `make run` does)."""
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    app.switch_page("pages/2_Templates.py")
    return app.run()


def test_cards_describe_every_template() -> None:
    cards = gallery.template_cards()
    assert {card.flow.id for card in cards} == set(mawb.template_ids())
    welcome = next(card for card in cards if card.flow.id == "lead_welcome_v1")
    assert welcome.category == "welcome"
    assert welcome.duration == "14 days"
    assert welcome.steps == len(welcome.flow.nodes) > 0


def test_filters_combine_category_and_words() -> None:
    cards = gallery.template_cards()
    sms = gallery.filter_cards(cards, None, "SMS")
    assert sms and all("sms" in card.flow.metadata.channels + card.flow.metadata.tags
                       or "sms" in card.flow.description.lower() for card in sms)
    assert len(sms) < len(cards)
    welcome = gallery.filter_cards(cards, "welcome", "")
    assert [card.flow.id for card in welcome] == ["lead_welcome_v1"]
    assert gallery.filter_cards(cards, "welcome", "sms") == []
    assert gallery.filter_cards(cards, gallery.ALL_CATEGORIES, "") == cards


def test_fresh_copy_has_a_new_valid_id_and_keeps_the_template() -> None:
    template = mawb.load_template("lead_welcome_v1")
    taken = {"lead_welcome_" + f"{i:04x}" for i in range(0, 65536, 2)}  # half the space taken
    copy = gallery.fresh_copy(template, taken)
    assert copy.id.startswith("lead_welcome_") and copy.id not in taken
    assert copy.id != template.id and copy.version == 1
    assert validate_flow(copy).valid
    assert set(copy.ui.positions) == {node.id for node in copy.nodes}
    assert mawb.load_template("lead_welcome_v1").id == "lead_welcome_v1"


def test_preview_graph_draws_every_step_and_branch() -> None:
    flow = mawb.load_template("lead_welcome_v1")
    graph = gallery.preview_graph(flow)
    assert [node["id"] for node in graph["nodes"]] == [node.id for node in flow.nodes]
    assert len(graph["edges"]) == len(flow.edges)
    assert {edge["sourceHandle"] for edge in graph["edges"]} >= {"true"}


@pytest.mark.usefixtures("empty_home")
def test_page_shows_every_card_and_filters() -> None:
    app = gallery_app()
    assert not app.exception
    titles = {subheader.value for subheader in app.subheader}
    assert titles == {flow.name for flow in mawb.list_templates()}
    previews = canvases(app)
    assert len(previews) == len(titles)
    assert all(preview["read_only"] and preview["graph"]["nodes"] for preview in previews.values())
    assert not any(preview["minimap"] for preview in previews.values())
    app.text_input(key="gallery_search").input("webinar").run()
    shown = {subheader.value for subheader in app.subheader}
    assert "Webinar reminders by region" in shown and len(shown) < len(titles)
    app.text_input(key="gallery_search").input("no such template at all").run()
    assert not app.subheader
    assert any("No template matches" in info.value for info in app.info)
    app.text_input(key="gallery_search").input("").run()
    app.selectbox(key="gallery_category").select("retention").run()
    assert [subheader.value for subheader in app.subheader] == ["Win-back of inactive customers"]


@pytest.mark.usefixtures("empty_home")
def test_use_this_template_opens_a_copy_in_the_builder() -> None:
    app = gallery_app()
    app.button(key="use_lead_welcome_v1").click().run()
    assert not app.exception
    handed = app.session_state["mawb_flow"]
    assert handed.id.startswith("lead_welcome_") and handed.id != "lead_welcome_v1"
    assert handed.name == "Welcome series"
    # The Builder took the copy over (its notice names the flow it opened).
    assert any("Opened Welcome series" in notice.value for notice in app.success)
