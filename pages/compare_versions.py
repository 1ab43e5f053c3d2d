"""Compare versions: metrics, fixed and broken test examples, and the evidence before and after."""
import streamlit as st

from ui import versions_widgets as vw

st.title("⚖️ Compare versions")
name = st.session_state.get("any_model")
if not name:
    st.stop()
if not vw.has_two_versions(name):
    st.info(f"{name} has a single version. Retrain it from your corrections to get a candidate to compare.")
    st.stop()

old, new = vw.pick_versions(name)
if notice := st.session_state.pop("versions_notice", None):
    st.success(notice)
vw.version_actions(name, new, old, key="compare")
vw.change_log(name)
if old == new:
    st.info("Choose two different versions.")
    st.stop()

st.subheader("Metrics on the clean test split")
vw.metrics_comparison(name, old, new)
st.subheader("Test examples the new version fixed and broke")
vw.fixed_and_broken(name, old, new)
st.subheader("Where each version looks, on the corrected examples")
vw.evidence_pairs(name, old, new)
st.subheader("Right for the right reasons? Attribution inside marked regions")
vw.reason_effect_section(name, old, new)
vw.card_view(name, new)
vw.version_report_button(name, old, new)
