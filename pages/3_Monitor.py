"""Monitor: per-step counts on the canvas, KPIs, who-is-where, activity over time, errors."""

from __future__ import annotations

import streamlit as st

from mawb.ui.monitor_view import render_monitor

st.set_page_config(page_title="Monitor · mawb", layout="wide")
render_monitor()
