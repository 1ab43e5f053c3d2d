"""Explainability Workbench — router only: page config, navigation, shared sidebar."""
import streamlit as st

from ui import sidebar
from ui import warmup; warmup.start()  # noqa: E702  shap's numba compile, in the background

st.set_page_config(page_title="Explainability Workbench", page_icon="🔍", layout="wide")

# (page file, title, icon, modality the page works on)
PAGES = [
    ("pages/explain_image.py", "Explain image", "🖼️", "image"),
    ("pages/explain_text.py", "Explain text", "📝", "text"),
    ("pages/learn.py", "Learn", "🎓", None),
    ("pages/review.py", "Review labels", "🏷️", None),
    ("pages/bring_your_own.py", "Your model & data", "📦", None),
    ("pages/retrain.py", "Retrain", "🔁", None),
    ("pages/compare_versions.py", "Compare versions", "⚖️", None),
    ("pages/dataset.py", "Dataset", "📊", None),
    ("pages/batch.py", "Batch", "🗂️", None),
]

pages = {path: st.Page(path, title=title, icon=icon, default=(i == 0)) for i, (path, title, icon, _) in enumerate(PAGES)}
modality_of = {path: modality for path, _, _, modality in PAGES}
current = st.navigation(list(pages.values()))

st.sidebar.title("🔍 Explainability Workbench")
current_path = next((path for path, page in pages.items() if page.url_path == current.url_path), None)
sidebar.model_picker(modality_of.get(current_path))
sidebar.annotator_box()
current.run()
