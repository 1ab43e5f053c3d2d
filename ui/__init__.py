"""Streamlit helpers shared by the pages: cached loaders, sidebar, renderers."""
