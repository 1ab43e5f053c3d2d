"""Learn: walk-throughs of Grad-CAM, LIME and SHAP on the real models, the shortcut lesson, guess-then-reveal."""
import streamlit as st

from ui import learn_sections
from workbench import lessons

st.title("🎓 Learn how explanations work")
st.markdown(lessons.LESSON_TEXT["intro"])

gradcam, lime, shap, shortcut, guess = st.tabs(
    ["How Grad-CAM works", "How LIME works", "How SHAP works", "The shortcut lesson", "Guess, then reveal"]
)
with gradcam:
    learn_sections.gradcam_tab()
with lime:
    learn_sections.lime_tab()
with shap:
    learn_sections.shap_tab()
with shortcut:
    learn_sections.shortcut_tab()
with guess:
    learn_sections.guess_tab()
