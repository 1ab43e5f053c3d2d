"""What a method's tab shows when the method cannot run on the chosen model.

The core keeps such a method's tab (`MethodTab.unavailable_reason`) instead of dropping it,
so people see that the method exists and why it does not apply here (Grad-CAM on a model
without a convolution layer), rather than wondering where it went.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.explaining import MethodTab


def unavailable_notice(tab: MethodTab, *, where: Any = st) -> None:
    """The reason the tab's method cannot run on this model, in place of its settings and map."""
    where.info(tab.unavailable_reason or f"{tab.title} cannot run on this model.")
