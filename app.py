"""Explainability Workbench — router only: page config, navigation, shared sidebar."""
import streamlit as st

from ui import identity, sidebar
from workbench import preload, warmup

# section -> (page file, title, icon, modality the page works on; None = any model)
SECTIONS = {
    "Explore": [
        ("pages/explain_image.py", "Explain image", "🖼️", "image"),
        ("pages/explain_text.py", "Explain text", "📝", "text"),
        ("pages/dataset.py", "Dataset", "📊", None),
        ("pages/batch.py", "Batch", "🗂️", None),
    ],
    "Improve": [
        ("pages/review.py", "Review labels", "🏷️", None),
        ("pages/retrain.py", "Retrain", "🔁", None),
        ("pages/compare_versions.py", "Compare versions", "⚖️", None),
        ("pages/bring_your_own.py", "Your model & data", "📦", None),
    ],
    "Teach": [
        ("pages/learn.py", "Learn", "🎓", None),
    ],
}
PAGES = [entry for entries in SECTIONS.values() for entry in entries]


def main() -> None:
    st.set_page_config(page_title="Explainability Workbench", page_icon="🔍", layout="wide")
    preload.page_started()  # a scheduled start-up waits for this visitor's page to paint first
    # shap's one-off numba compilation, in a background thread that waits until the server's model
    # preload (started by ui/serve.py) is done and no map is being computed for anyone.
    warmup.start()
    identity.gate()  # with sign-in configured, nothing is shown before signing in

    pages = {path: st.Page(path, title=title, icon=icon) for path, title, icon, _ in PAGES}
    modality_of = {path: modality for path, _, _, modality in PAGES}

    # Streamlit serves the default page at "/" only, so a link to the first page's own address
    # (/explain_image) would meet "Page not found". The default is a hidden page that opens the
    # first page at its own address instead.
    home = st.Page(lambda: st.switch_page(pages[PAGES[0][0]]), title="Explainability Workbench",
                   url_path="home", default=True, visibility="hidden")
    navigation = {section: [pages[path] for path, *_ in entries] for section, entries in SECTIONS.items()}
    navigation["Explore"].insert(0, home)
    current = st.navigation(navigation)
    if current is home:
        current.run()  # switches page at once: no sidebar work for a page nobody sees

    st.sidebar.title("🔍 Explainability Workbench")
    current_path = next((path for path, page in pages.items() if page is current), None)
    sidebar.model_picker(modality_of.get(current_path))
    sidebar.annotator_box()
    current.run()


# Streamlit runs this file as "__main__". A process started with multiprocessing's "spawn" from
# a server or test process re-imports the main module as "__mp_main__": it must not run the app.
if __name__ == "__main__":
    main()
