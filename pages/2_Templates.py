"""Templates: the gallery of ready-made flows with previews; "use this template"."""

from __future__ import annotations

import streamlit as st

from mawb.ui.gallery import render_gallery

st.set_page_config(page_title="Templates · mawb", layout="wide")
render_gallery()
