"""Review labels: the queue of likely label errors, one example at a time or as an editable table."""
import streamlit as st

from ui import reason_io
from ui import review_widgets as review
from ui import sidebar
from workbench import datasets

st.title("🏷️ Review labels")
model = sidebar.selected_model(None)
if model is None:
    st.stop()

choice = review.choose_split(model)
if choice is None:
    st.stop()
dataset = datasets.load(*choice)
model = review.review_model(model, dataset.split)
result = review.load_audit(model, dataset)
review.audit_caption(result)
review.rerank_button()

annotator = sidebar.annotator()
ledger = review.open_ledger()
latest = ledger.latest_events(dataset.name)
filters = review.queue_filters(result)
review.show_progress(result, latest, filters)
review.flash()

mode = st.radio("Mode", ["One at a time", "Table"], horizontal=True, key="review_mode",
                help="Table mode edits many labels at once; the changes are checked before saving.")
if mode == "One at a time":
    review.review_one(model, dataset, result, ledger, latest, filters, annotator)
else:
    review.review_table(model, result, ledger, latest, filters, annotator)

# Issue 17: the dataset's reason marks as a file, and marks from a file (validated whole).
reason_io.reason_marks_io(dataset.name, annotator, ledger)
