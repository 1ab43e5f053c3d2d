"""Explain one input with one method, and everything that belongs with it, as one typed result.

Pages used to chain explain -> trust -> report themselves, each preparing the input again.
Here the core does it once: `explain_input` prepares the input for the model, explains it
(cached per model version, input, method, parameters, class and seed) and returns a frozen
`ExplainedInput` that carries the explanation, the model-sized input it explained, its trust
figures (measured on request, so a page can show the map first and the figures after) and its
report sections. `compare` does the same for several methods on one input. Pages only render.
"""
from __future__ import annotations

import dataclasses
import inspect
import time
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable, Sequence

import numpy as np

from explainers import metrics, registry
from explainers.rounds import unsettled
from explainers import sanity as sanity_checks
from explainers.base import Explainer
from foundation.errors import WorkbenchError
from foundation.types import Explanation, Modality
from models.loaded import LoadedModel
from workbench import cache, reports

GroundTruth = metrics.GroundTruth  # what is known to matter in an input (mask, planted cue, rationale)
TrustReport = metrics.TrustReport
SanityCascade = sanity_checks.SanityCascade
SANITY_THRESHOLD = sanity_checks.THRESHOLD  # a map that keeps this similarity with a scrambled model is flagged
# The gradient methods' randomisation check runs with the trust figures (a backward pass per
# step); SHAP's and LIME's would re-run the whole perturbation method once per step, so a page
# runs those on request only.
GRADIENT_METHODS = metrics.GRADIENT_METHODS

# Agreement looks at the top share of each map: a tenth of the pixels, a fifth of the (few) words.
IMAGE_TOP_FRACTION = 0.1
TEXT_TOP_FRACTION = 0.2


# --- preparing inputs -----------------------------------------------------------------------------


def prepare_images(model: LoadedModel, images: Sequence[Any]) -> np.ndarray:
    """Images of any size and colour layout at the model's input size, uint8 RGB (what explainers take)."""
    return model.prepare_images(images)


def prepare_input(model: LoadedModel, item: Any) -> Any:
    """One input as the model reads it: a model-sized uint8 RGB image, or the text as a string."""
    return model.prepare_inputs([item])[0]


# --- explaining -----------------------------------------------------------------------------------


def explainer_class(model: LoadedModel, method: str) -> type[Explainer]:
    """The registered method `method`, checked to apply to `model`; one WorkbenchError sentence otherwise."""
    try:
        cls = registry.get(method)
    except KeyError as exc:
        raise WorkbenchError(str(exc.args[0]) + ".") from None
    if not cls.supports(model):
        reason = cls.unavailable_reason(model)
        raise WorkbenchError(reason or f"{cls.title} does not apply to model {model.name}; choose another method.")
    return cls


def explain(
    model: LoadedModel,
    method: str,
    inputs: Sequence[Any],
    targets: Sequence[int] | None = None,
    *,
    seed: int = 0,
    use_cache: bool = True,
    on_round: Callable[[int, Explanation], None] | None = None,
    **params: Any,
) -> list[Explanation]:
    """Explain a batch with a registered method (images are brought to the model's input first).

    `use_cache=False` computes afresh and leaves target choice to the method itself: what the
    benchmarks time, so they measure the method and not the cache. `on_round(round_index,
    partial_explanation)` is handed to a method that runs in rounds (SHAP, LIME), so a page can
    draw the first map and refine it; it is not called for a cached result.
    """
    cls = explainer_class(model, method)
    if model.modality is Modality.IMAGE:
        inputs = list(prepare_images(model, inputs))
    # Only methods in rounds (SHAP, LIME) take the hook; Grad-CAM answers in one pass.
    takes_hook = on_round is not None and "on_round" in inspect.signature(cls.explain).parameters
    hook = {"on_round": on_round} if takes_hook else {}
    if not use_cache:
        return cls(model, **params).explain(list(inputs), targets, seed=seed, **hook)
    if targets is None:
        targets = [int(i) for i in model.predict_proba(inputs).argmax(axis=1)]
    targets = [int(t) for t in targets]
    keys = [
        cache.result_key(model.name, model.version, item, method, dict(params, target=t, seed=seed))
        for item, t in zip(inputs, targets)
    ]

    def compute(indices: list[int]) -> list[Explanation]:
        explainer = cls(model, **params)
        return explainer.explain([inputs[i] for i in indices], [targets[i] for i in indices], seed=seed, **hook)

    return cache.EXPLANATIONS.get_or_compute_batch(keys, compute)


def ground_truth_of(data: Any, index: int) -> GroundTruth | None:
    """What a dataset knows matters in example `index` (its object mask, its planted mark), or None.
    A cue mask with nothing marked (an example without the mark) tells nothing and is left out."""
    mask = data.masks[index] if data.masks is not None else None
    cue = data.cue_masks[index] if data.cue_masks is not None else None
    if mask is None and cue is None:
        return None
    return GroundTruth(mask=mask, cue_mask=cue if cue is not None and cue.any() else None)


def as_ground_truth(ground_truth: Any) -> GroundTruth | None:
    """A GroundTruth from one, from an object mask (H x W array) or from rationale words."""
    if ground_truth is None or isinstance(ground_truth, GroundTruth):
        return ground_truth
    if isinstance(ground_truth, np.ndarray):
        return GroundTruth(mask=ground_truth)
    return GroundTruth(rationale=tuple(str(word) for word in ground_truth))


def measure_trust(model: LoadedModel, explanation: Explanation, model_input: Any,
                  ground_truth: Any = None, *, sanity: bool | None = None, baseline: str | None = None) -> TrustReport:
    """metrics.trust_summary of one explanation, computed once per (model version, explanation, input, truth),
    with the cascading randomisation check (`sanity_check`) merged in by `with_sanity`.

    sanity: run the check; None = only for the gradient methods (cheap). Otherwise an earlier
    check of this explanation is merged in when there is one, and nothing new is run.
    """
    truth = as_ground_truth(ground_truth)
    baseline = metrics.check_baseline(model.modality, baseline)  # None -> the modality's default
    key = cache.trust_key(model.name, model.version, explanation, model_input, truth) + f"|{baseline}"
    merged = cache.TRUST.get(key + "|with-sanity")
    if merged is not None:
        return merged
    report = cache.TRUST.get(key)
    if report is None:
        # The old two-layers-at-once check is replaced by the cascade, merged in below.
        report = metrics.trust_summary(model, explanation, model_input, truth, baseline=baseline)
        cache.TRUST.put(key, report)
    run = explanation.method in GRADIENT_METHODS if sanity is None else sanity
    cascade = sanity_check(model, explanation, model_input, compute=run)
    if cascade is None:
        return report
    merged = with_sanity(report, cascade)
    cache.TRUST.put(key + "|with-sanity", merged)
    return merged


def sanity_check(model: LoadedModel, explanation: Explanation, model_input: Any, *,
                 compute: bool = True) -> SanityCascade | None:
    """The cascading and independent randomisation check of one explanation (explainers.sanity),
    cached per (model version, explanation, input); None when not measured yet and `compute` is False.

    Same method parameters, class and seed at every step; SHAP and LIME run with their cheaper
    stopping rule (stop when the map is stable), so a full-budget map is compared with a
    re-explanation of the intact model under that same rule, never with itself.
    """
    key = cache.trust_key(model.name, model.version, explanation, model_input, None) + "|sanity-cascade"
    found = cache.TRUST.get(key)
    if found is not None or not compute:
        return found
    params = metrics.constructor_params(explanation.method, explanation)
    cheap = sanity_checks.cheap_params(explanation.method, params)
    original = [explanation] if cheap == params else None
    found = sanity_checks.sanity_cascade(model, explanation.method, [model_input], [explanation.target],
                                         params=cheap, original=original, seed=explanation.seed or 0)
    cache.TRUST.put(key, found)
    if found.explanations:
        _SECONDS_PER_STEP[(model.name, model.version, explanation.method)] = found.seconds / found.explanations
    return found


# Seconds per re-explanation measured by the last check of (model, version, method): a page's first
# map pays warm-up costs (tracing, the first SHAP masker), so its own time overstates a step's.
_SECONDS_PER_STEP: dict[tuple[str, str, str], float] = {}


def sanity_seconds(model: LoadedModel, explanation: Explanation) -> float:
    """About how long `sanity_check` takes for this explanation: the time per step the last check of
    this model and method took, else the explanation's own time per step."""
    estimate = sanity_checks.estimate_seconds(explanation, model)
    measured = _SECONDS_PER_STEP.get((model.name, model.version, explanation.method))
    if measured is None or not explanation.seconds:
        return estimate
    return estimate * measured / explanation.seconds


def with_sanity(report: TrustReport, cascade: SanityCascade) -> TrustReport:
    """The trust report with the randomisation check's figures, and its warning when the map ignores the model."""
    figures = dict(report.figures)
    figures["sanity_top_layer_similarity"] = cascade.top_similarity
    figures["sanity_lowest_similarity"] = cascade.lowest_similarity
    level, verdict = report.level, report.verdict
    if cascade.flagged:
        level, verdict = "warning", "Be careful, this map fails the randomisation check: " + cascade.reason()
    return dataclasses.replace(report, figures=figures, level=level, verdict=verdict)


@dataclass(frozen=True)
class ExplainedInput:
    """One input explained by one method: what a page shows under "why"."""

    model: LoadedModel
    explanation: Explanation
    model_input: Any  # exactly what was explained: the model-sized uint8 RGB image, or the text
    ground_truth: GroundTruth | None = None  # what is known to matter in the input, for the trust figures
    wall_seconds: float = 0.0  # time of this call: near zero when the explanation came from the cache

    @property
    def from_cache(self) -> bool:
        return self.wall_seconds < 0.25 * self.explanation.seconds or self.wall_seconds < 0.005

    def caption(self) -> str:
        """'computed in 0.42 s', or '0.42 s · from cache'."""
        if self.from_cache:
            return f"{self.explanation.seconds:.2f} s · from cache"
        return f"computed in {self.wall_seconds:.2f} s"

    def trust(self, baseline: str | None = None) -> TrustReport:
        """The trust figures: measured on the first request (about a second), cached after; with the
        randomisation check for the gradient methods, and for the others once `sanity()` ran.
        baseline: what hidden pixels or words become (metrics.BASELINES; None = the default)."""
        return measure_trust(self.model, self.explanation, self.model_input, self.ground_truth, baseline=baseline)

    def sanity(self, compute: bool = True) -> SanityCascade | None:
        """The cascading randomisation check of this map (None if not run yet and compute is False)."""
        return sanity_check(self.model, self.explanation, self.model_input, compute=compute)

    @property
    def sanity_is_cheap(self) -> bool:
        """Whether the check runs with the trust figures (gradient methods) or on request."""
        return self.explanation.method in GRADIENT_METHODS

    def sanity_seconds(self) -> float:
        return sanity_seconds(self.model, self.explanation)

    @property
    def report_title(self) -> str:
        return f"{self.explanation.method} explanation of {self.model.name} {self.model.version}"

    def report_sections(self, trust: TrustReport | None = None) -> tuple[reports.Section, ...]:
        """The model, the explanation and (when measured) its trust figures, for one HTML report."""
        sections = [reports.model_section(self.model), reports.explanation_section(self.explanation, self.model_input)]
        if trust is not None:
            sections.append(trust_report_section(trust))
        return tuple(sections)


def trust_report_section(trust: TrustReport) -> reports.Section:
    return reports.trust_section({k: round(float(v), 4) for k, v in trust.figures.items()}, text=trust.verdict)


def explain_input(
    model: LoadedModel,
    method: str,
    item: Any,
    target: int | None = None,
    *,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    ground_truth: Any = None,
    on_round: Callable[[int, Explanation], None] | None = None,
) -> ExplainedInput:
    """Explain one input (an image at any size, or a cleaned text) with one method for one class
    (the predicted one when None); `on_round` sees each partial map of a method in rounds."""
    model_input = prepare_input(model, item)
    started = time.perf_counter()
    explanation = explain(model, method, [model_input], None if target is None else [int(target)], seed=seed,
                          on_round=on_round, **(params or {}))[0]
    return ExplainedInput(model, explanation, model_input, as_ground_truth(ground_truth),
                          time.perf_counter() - started)


# --- comparing methods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PairAgreement:
    first: str
    second: str
    rank_correlation: float
    top_overlap: float  # intersection over union of the two top sets
    top_k: int  # positions in each top set

    @property
    def shared(self) -> int:
        """How many positions the two top sets have in common (from the IoU: s / (2k - s))."""
        return int(round(self.top_overlap * 2 * self.top_k / (1.0 + self.top_overlap)))


def agreements(explanations: Sequence[Explanation], titles: Sequence[str]) -> list[PairAgreement]:
    """Agreement of every pair of explanations (same input, same class)."""
    rows = []
    for (a, title_a), (b, title_b) in combinations(zip(explanations, titles), 2):
        fraction = TEXT_TOP_FRACTION if a.modality is Modality.TEXT else IMAGE_TOP_FRACTION
        scores = metrics.agreement(a.values, b.values, top_fraction=fraction)
        k = max(1, int(round(fraction * a.values.size)))
        rows.append(PairAgreement(title_a, title_b, scores["rank_correlation"], scores["top_overlap"], k))
    return rows


@dataclass(frozen=True)
class Comparison:
    """Several methods' explanations of one input for one class, and how far each pair agrees."""

    results: tuple[ExplainedInput, ...]
    titles: tuple[str, ...]
    agreements: tuple[PairAgreement, ...]

    @property
    def explanations(self) -> list[Explanation]:
        return [r.explanation for r in self.results]

    @property
    def unsettled_titles(self) -> list[str]:
        """The methods whose rounds spent the budget with the map still changing (see rounds.unsettled)."""
        return [title for title, result in zip(self.titles, self.results)
                if unsettled(result.explanation.extras or {})]

    def unsettled_note(self) -> str | None:
        """One sentence warning that part of the disagreement may be sampling noise, or None."""
        titles = self.unsettled_titles
        if not titles:
            return None
        names = titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} and {titles[-1]}"
        maps = "its map" if len(titles) == 1 else "their maps"
        return (f"{names} did not settle within the budget ({maps} still changed between the last two rounds), "
                "so part of any disagreement below may be sampling noise: raise the budget to check.")

    @property
    def report_title(self) -> str:
        model = self.results[0].model
        target = self.results[0].explanation.target_label
        return f"Comparison of explanations for {target} ({model.name} {model.version})"

    def report_sections(self) -> tuple[reports.Section, ...]:
        """The model, every method's map and the agreement table, for one HTML report."""
        first = self.results[0]
        sections = [reports.model_section(first.model)]
        sections += [reports.explanation_section(r.explanation, r.model_input, title=t)
                     for r, t in zip(self.results, self.titles)]
        if self.agreements:
            sections.append(reports.table_section("Agreement between methods", [
                {"pair": f"{row.first} vs {row.second}", "rank correlation": round(float(row.rank_correlation), 3),
                 "top overlap (IoU)": round(float(row.top_overlap), 3)} for row in self.agreements],
                text=self.unsettled_note() or ""))
        return tuple(sections)


def compare(results: Sequence[ExplainedInput], titles: Sequence[str]) -> Comparison:
    """Put explanations of the same input side by side (at least one)."""
    if not results:
        raise ValueError("compare needs at least one explanation")
    explanations = [r.explanation for r in results]
    return Comparison(tuple(results), tuple(titles), tuple(agreements(explanations, titles)))


# --- which methods a page offers --------------------------------------------------------------------


@dataclass(frozen=True)
class MethodTab:
    method: str  # the registry name; its variants (classes with variant_of = it) are chosen inside this tab
    title: str
    unavailable_reason: str | None = None  # why the method cannot run on this model (shown in its tab)

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None


def method_tabs(model: LoadedModel) -> list[MethodTab]:
    """One tab per method the explainers offer on the pages for the model's modality, in their
    declared order, titled from the class; a method that cannot run on this model (Grad-CAM
    without a convolution) keeps its tab, flagged unavailable with the reason.

    A qualifier in brackets is dropped ("SHAP (Partition)" -> "SHAP") unless an earlier tab
    already has the short title, so titles stay short and unique.
    """
    tabs: list[MethodTab] = []
    for name, cls in registry.all_methods().items():
        if model.modality not in cls.modalities or not cls.on_pages or cls.variant_of is not None:
            continue  # a variant is chosen inside its method's tab (Grad-CAM++ in Grad-CAM's)
        short = cls.title.split(" (")[0]
        title = short if short not in {t.title for t in tabs} else cls.title
        tabs.append(MethodTab(name, title, cls.unavailable_reason(model)))
    return tabs

