"""The mawb workbench (`make run`): the navigation between the home page and `pages/`.

Streamlit runs this script on every page; it names the pages (so the sidebar reads "Home",
"Builder", ... rather than file names) and runs the chosen one. Page files that are missing
are left out of the menu instead of breaking the app.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mawb.ui.home import PAGES, render_home

ROOT = Path(__file__).resolve().parent


def home() -> None:
    render_home(ROOT)


st.set_page_config(page_title="mawb workbench", page_icon="🧭", layout="wide")
menu = [st.Page(home, title="Home", icon=":material/home:", default=True)]
menu += [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PAGES
         if (ROOT / path).exists()]
st.navigation(menu).run()
