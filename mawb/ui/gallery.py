"""The template gallery: one card per template, filters, and "use this template".

Analysts rarely start from an empty canvas. The gallery shows every flow of the template
library with what it is for (category, description, duration, steps, channels, tags) and a
read-only canvas preview drawn by the same component as the builder. Using a template hands a
fresh copy with a new id to the builder (``st.session_state["mawb_flow"]``), so saving it never
touches the template or a flow already in the workspace. Filtering and copying are plain
functions, tested without Streamlit; ``render_gallery`` only draws.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mawb.templates import list_templates
from mawb.ui.builder_state import SHARED_FLOW_KEY, with_layout
from mawb.ui.flow_graph import flow_to_graph

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mawb.model import Flow

BUILDER_PAGE = "pages/1_Builder.py"
ALL_CATEGORIES = "All categories"
PREVIEW_HEIGHT = 280
"""Pixels; at full card width every template fits by its width, so more height stays empty."""
_VERSION_SUFFIX = re.compile(r"_v\d+$")


@dataclass(frozen=True)
class TemplateCard:
    """What a gallery card shows about one template."""

    flow: Flow

    @property
    def category(self) -> str:
        return self.flow.metadata.category

    @property
    def duration(self) -> str:
        days = self.flow.metadata.duration_days
        if days is None:
            return "open-ended"
        return "same day" if days == 0 else f"{days} day{'s' if days != 1 else ''}"

    @property
    def steps(self) -> int:
        return len(self.flow.nodes)

    def matches(self, text: str) -> bool:
        """Whether every word of `text` occurs in the id, name, description, tags or channels."""
        metadata = self.flow.metadata
        haystack = " ".join([self.flow.id, self.flow.name, self.flow.description,
                             self.category, *metadata.tags, *metadata.channels]).lower()
        return all(word in haystack for word in text.lower().split())


def template_cards() -> list[TemplateCard]:
    """Every template of the library, by category then name."""
    cards = [TemplateCard(flow) for flow in list_templates()]
    return sorted(cards, key=lambda card: (card.category, card.flow.name or card.flow.id))


def categories(cards: Iterable[TemplateCard]) -> list[str]:
    return sorted({card.category for card in cards})


def filter_cards(cards: Iterable[TemplateCard], category: str | None = None,
                 text: str = "") -> list[TemplateCard]:
    """Cards of `category` (None or ALL_CATEGORIES: any) matching the search `text`."""
    wanted = None if category in (None, ALL_CATEGORIES) else category
    return [card for card in cards
            if (wanted is None or card.category == wanted) and card.matches(text)]


def fresh_copy(template: Flow, taken: Iterable[str] = ()) -> Flow:
    """A copy of `template` with a new flow id (``lead_welcome_3fa2``) not in `taken`, version 1,
    laid out for the canvas."""
    base = _VERSION_SUFFIX.sub("", template.id)[:50]
    used = set(taken) | {template.id}
    while True:
        flow_id = f"{base}_{secrets.token_hex(2)}"
        if flow_id not in used:
            break
    copy = template.model_copy(update={"id": flow_id, "version": 1}, deep=True)
    return with_layout(copy)


def preview_graph(flow: Flow) -> dict[str, Any]:
    """The read-only canvas graph of a template, laid out left to right."""
    return flow_to_graph(with_layout(flow))


# -- Streamlit -----------------------------------------------------------------------------
def render_gallery() -> None:
    """Draw the gallery page."""
    import streamlit as st

    st.title("Templates")
    st.caption("Ready-made sequences to start from. Using one opens a copy in the Builder; "
               "the template itself never changes.")
    cards = template_cards()
    if not cards:
        st.info("No templates found: the template library (`templates/`) is missing from this "
                "installation. Start from an empty flow in the Builder instead.")
        return
    search, category = st.columns([3, 2])
    text = search.text_input("Search", placeholder="welcome, sms, scoring ...",
                             key="gallery_search")
    chosen = category.selectbox("Category", [ALL_CATEGORIES, *categories(cards)],
                                key="gallery_category")
    shown = filter_cards(cards, chosen, text)
    st.caption(f"{len(shown)} of {len(cards)} templates")
    if not shown:
        st.info("No template matches. Clear the search or pick another category.")
        return
    for card in shown:
        _render_card(card)


def _render_card(card: TemplateCard) -> None:
    import streamlit as st

    from mawb.ui.canvas import flow_canvas
    from mawb.versions import VersionStore

    flow = card.flow
    with st.container(border=True):
        # Text and button on top, the preview across the whole card below: flows are wide and
        # short, so the card's width is what makes their steps readable.
        about, action = st.columns([4, 1], gap="medium")
        with about:
            st.subheader(flow.name or flow.id, anchor=False)
            st.markdown(f":blue-badge[{card.category}] :gray-badge[{card.duration}] "
                        f":gray-badge[{card.steps} steps]"
                        + "".join(f" :violet-badge[{c}]" for c in flow.metadata.channels))
            st.write(flow.description)
            if flow.metadata.tags:
                st.caption("Tags: " + ", ".join(flow.metadata.tags))
        with action:
            if st.button("Use this template", key=f"use_{flow.id}", type="primary",
                         icon=":material/edit:", width="stretch"):
                st.session_state[SHARED_FLOW_KEY] = fresh_copy(flow, VersionStore().flow_ids())
                st.switch_page(BUILDER_PAGE)
        flow_canvas(preview_graph(flow), key=f"gallery_preview_{flow.id}", read_only=True,
                    height=PREVIEW_HEIGHT)
