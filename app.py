"""The mawb workbench home page (`make run`); the other pages live in `pages/`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mawb.ui.home import render_home

st.set_page_config(page_title="mawb workbench", layout="wide")
render_home(Path(__file__).resolve().parent)
