"""Experiments: simulate a flow on a population, move param sliders, sweep, compare, save."""

from __future__ import annotations

import streamlit as st

from mawb.ui.experiments_view import render_experiments

st.set_page_config(page_title="Experiments · mawb", layout="wide")
render_experiments()
