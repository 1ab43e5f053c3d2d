"""Explanation methods. Pure Python: nothing here imports streamlit."""
