"""The shared UI kit: what every page that shows a prediction or an explanation draws with.

prediction  - "The model says X (p %)" and the class-probability bars
overlay     - a map over an image, or highlighted words, for any Explanation
trust       - the trust panel under an explanation (figures, verdict, curves)
report      - the HTML report button, and the footer (trust + report) under an ExplainedInput
running     - explaining with a visible spinner (and the one-off SHAP warm-up); the rounds caption
tabs        - the method tabs (and Compare) of an Explain page; the reason where a method cannot run

Pages get one typed result from the core (`workbench.api.explain_input`) and hand it to these;
nothing here decides what to explain.
"""
from ui.kit.overlay import display_image, grey_underlay, overlay_image, show_attribution, show_tokens
from ui.kit.prediction import prediction_block, prediction_sentence, probability_bars
from ui.kit.report import comparison_report_button, explanation_footer, report_button
from ui.kit.running import current_choice, explain, rounds_caption
from ui.kit.trust import curves_figure, trust_figures, trust_panel
from ui.kit.tabs import method_tabs, unavailable_notice

__all__ = [
    "comparison_report_button", "current_choice", "curves_figure", "display_image", "explain", "explanation_footer",
    "grey_underlay", "method_tabs", "overlay_image", "prediction_block", "prediction_sentence", "probability_bars",
    "report_button", "rounds_caption", "show_attribution", "show_tokens", "trust_figures", "trust_panel",
    "unavailable_notice",
]
