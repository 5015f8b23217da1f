"""Data: upload contacts and events with a validation report; what the workspace holds."""

from __future__ import annotations

import streamlit as st

from mawb.ui.data_view import render_data

st.set_page_config(page_title="Data · mawb", layout="wide")
render_data()
