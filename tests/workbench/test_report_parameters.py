"""A report lists an explanation's recorded parameters under the labels their method declares."""
from __future__ import annotations

import numpy as np

from foundation.types import Explanation, Modality
from workbench import reports


def _explanation(method: str, params: dict) -> Explanation:
    return Explanation(method=method, modality=Modality.IMAGE, target=0, target_label="circle",
                       values=np.zeros((4, 4), np.float32), model_name="shapes", model_version="v1",
                       seconds=0.1, params=params, seed=3)


def test_settings_use_the_declared_labels_and_choice_labels():
    section = reports.explanation_section(_explanation("shap", {"max_evals": 500, "masker": "inpaint", "batch_size": 64}))
    assert section.facts["settings"] == "Evaluations (max_evals): 500 · Masker: Inpaint (Telea) · Batch size: 64"
    # The names that reproduce the result stay listed as they are.
    assert section.facts["parameter max_evals"] == 500 and section.facts["parameter masker"] == "inpaint"


def test_unknown_methods_and_names_keep_their_names():
    section = reports.explanation_section(_explanation("someone-elses", {"alpha": 0.5}))
    assert section.facts["settings"] == "alpha: 0.5"
    assert "settings" not in reports.explanation_section(_explanation("gradcam", {})).facts
