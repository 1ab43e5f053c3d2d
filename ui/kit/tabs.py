"""The method tabs of an Explain page: one per method the core offers for the model, then Compare.

The core keeps a method that cannot run on the chosen model (`MethodTab.unavailable_reason`)
instead of dropping it, so people see that the method exists and why it does not apply here
(Grad-CAM on a model without a convolution layer), rather than wondering where it went.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st

from workbench.explaining import MethodTab


def unavailable_notice(tab: MethodTab, *, where: Any = st) -> None:
    """The reason the tab's method cannot run on this model, in place of its settings and map."""
    where.info(tab.unavailable_reason or f"{tab.title} cannot run on this model.")


def method_tabs(methods: Sequence[MethodTab], *, key: str, show_method: Callable[[str], None],
                show_compare: Callable[[Sequence[MethodTab]], None]) -> None:
    """One tab per method, then Compare. Only the open tab runs (lazy tabs), and the open tab is
    kept in the address (`?<key>=Compare`) so a link shows the same view."""
    tabs = st.tabs([m.title for m in methods] + ["Compare"], key=key, on_change="rerun", bind="query-params")
    for method, tab in zip(methods, tabs):
        with tab:
            if tab.open is False:
                continue
            if method.available:
                show_method(method.method)
            else:
                unavailable_notice(method)
    with tabs[-1]:
        if tabs[-1].open is not False:
            show_compare(methods)
