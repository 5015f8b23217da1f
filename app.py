"""The mawb workbench: Streamlit entry point (`make run`)."""

from __future__ import annotations

import streamlit as st

import mawb

st.set_page_config(page_title="mawb workbench", layout="wide")
st.title("mawb — Marketing Automation Workbench")
st.write("Templates available:")
st.dataframe(
    [
        {"id": f.id, "name": f.name, "category": f.metadata.category, "nodes": len(f.nodes)}
        for f in mawb.list_templates()
    ]
)
