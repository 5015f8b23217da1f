"""Builder: design a flow on the canvas, configure its steps, validate, version, compile."""

from __future__ import annotations

import streamlit as st

from mawb.ui.builder import render_builder

st.set_page_config(page_title="Builder · mawb", layout="wide")
render_builder()
