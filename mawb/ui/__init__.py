"""Streamlit workbench building blocks: mawb's own flow canvas component and page helpers."""
