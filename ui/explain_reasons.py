"""Mark the reason on the Explain pages (issue 17), below the explanation a person just looked at.

A dataset sample gets the Review page's folded panel (`reason_widgets.folded_panel`), stored in
the same ledger under the same dataset name and example id, so a mark made here is the same
event the Review page shows (and retraining reads). An upload or typed text is no dataset's
example: there is nothing to key a mark to, so the page says how to make it one instead.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from foundation.types import Modality
from labels import Ledger
from ui import reason_widgets, sidebar
from workbench import datasets

# The splits whose marks retraining learns from (workbench.retrain fine-tunes on one of them;
# train and train_noisy hold the same examples under the same ids). Not imported from
# workbench.retrain: that imports Keras, and this page must draw its progress message while the
# server's start-up is still importing TensorFlow (issue 18).
TRAINING_SPLITS = (datasets.TRAIN_SPLIT, datasets.NOISY_SPLIT)
BYO_PAGE = "Your model & data"


def upload_note(modality: Modality) -> str:
    """Why an upload has no marking panel, and how to get one (one sentence)."""
    if modality is Modality.IMAGE:
        return ("✍️ Reason marks are kept for dataset examples only: choose “Sample from the dataset”, or import "
                f"your images as a dataset on “{BYO_PAGE}” first.")
    return ("✍️ Reason marks are kept for dataset examples only: pick a sample headline, or import your texts "
            f"as a dataset on “{BYO_PAGE}” first.")


def held_out_note(split: str | None) -> str | None:
    """Said above the panel for an example retraining does not learn from (None for a training example)."""
    if split is None or split in TRAINING_SPLITS:
        return None
    return (f"This is a {split} example: retraining learns from marks on training examples (the "
            f"{' and '.join(TRAINING_SPLITS)} splits), so a mark here is kept and exported but not learned from.")


def reason_section(model: Any, model_input: Any, dataset: str | None, split: str | None, example_id: str | None,
                   ledger: Ledger | None = None) -> None:
    """The folded marking panel for a dataset example, else one caption. `model_input`: the example as the
    model reads it (`api.prepare_input` of the dataset's own item: the marks' boxes count its pixels, their
    word indices its words)."""
    if dataset is None or example_id is None:
        st.caption(upload_note(model.modality))
        return
    # As on the Review page: the ledger of the workspace, the signed-in person (or the sidebar's
    # name); the panel itself refuses viewers and asks for a name before saving.
    reason_widgets.folded_panel(model, model_input, dataset, example_id, sidebar.annotator(),
                                ledger or Ledger(), note=held_out_note(split))
