"""The trust panel for an explanation computed elsewhere (the Learn page's lessons).

The panel itself is `ui.kit.trust_panel`, which renders an `ExplainedInput`; this wraps a
bare Explanation and its input into one so callers that hold only those can show it too.
"""
from __future__ import annotations

from typing import Any

from foundation.types import Explanation
from models.loaded import LoadedModel
from ui.kit import trust_panel
from workbench import api


def render_trust_panel(model: LoadedModel, explanation: Explanation, image_or_text: Any, ground_truth: Any = None,
                       *, key: str = "trust") -> api.TrustReport:
    """Show how far to trust `explanation` of `image_or_text` (any size: prepared for the model here)."""
    result = api.ExplainedInput(model, explanation, api.prepare_input(model, image_or_text),
                                api.as_ground_truth(ground_truth))
    return trust_panel(result, key=key)
