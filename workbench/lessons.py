"""The data behind the Learn page: real models, real intermediate results, plain numbers.

Every lesson function runs the actual model (or explainer) and returns a small dataclass
the page draws; nothing here imports streamlit, so a notebook can use the same lessons.

    python -m workbench.lessons fix-shortcut     # retrain shapes-shortcut with the ledger's reason marks, in the foreground

The Learn page runs the same fix in the background through `workbench.jobs` (one runner for
every background job: status, progress, lock, cancel and kill safety come from there).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

from explainers import metrics
from foundation.access import Identity
from foundation.errors import WorkbenchError
from foundation.types import Explanation
from workbench import jobs

SHORTCUT_MODEL = "shapes-shortcut"
SHORTCUT_DATASET = "shapes-shortcut"
CUE_CLASS = "circle"
# shap's image masker "blur(8,8)" (the SHAP explainer's default): the same "hidden" look here.
SHAP_BLUR = 8

# One-line definitions, so no term is used in a lesson before it is explained.
GLOSSARY: dict[str, str] = {
    "model": "a program that learned from examples to give each input a label.",
    "class": "one of the labels the model can give (for example circle, square, triangle, star).",
    "probability": "how sure the model is, from 0 % (certainly not) to 100 % (certainly).",
    "explanation": "a picture or colouring that shows which parts of the input the model relied on.",
    "attribution": "the number an explanation gives each pixel or word: how much it pushed the prediction.",
    "heatmap": "the attributions drawn as colours over the image: warm = important.",
    "feature map": "a grid the network computes inside itself; each one lights up where it found one kind of pattern.",
    "gradient": "how much the output would change if one number inside the network changed a little.",
    "superpixel": "a small patch of neighbouring pixels with similar colour, treated as one piece.",
    "surrogate": "a very simple model (a weighted sum) fitted to copy the real model near one input.",
    "coalition": "a group of input pieces that are kept visible while the others are hidden.",
    "Shapley value": "a piece's fair share of the prediction, averaged over every coalition it could join.",
    "base value": "the model's output when every piece is hidden: the starting point before any evidence.",
    "shortcut": "an easy clue in the training data that predicts the answer but is not the real reason.",
    "faithfulness": "whether an explanation shows what the model really uses, tested by hiding what it highlights.",
}

LESSON_TEXT: dict[str, str] = {
    "intro": (
        "These lessons open up real models that ship with the workbench. Every picture below is "
        "computed live from the model, not drawn by hand."
    ),
    "gradcam": (
        "**Grad-CAM** asks the network itself where it looked. Deep inside, the network keeps a stack of "
        "*feature maps* (small grids that light up where a pattern was found).\n\n"
        "Step 1: take the feature maps of the last convolution layer (a layer that scans the image with small filters).\n\n"
        "Step 2: give each map a *weight*: the average *gradient* of the class score with respect to that map. "
        "A big positive weight means “more of this pattern, more of this class”.\n\n"
        "Step 3: add the maps up, each times its weight, and keep only the positive part. That sum, "
        "stretched to the image size, is the heatmap."
    ),
    "lime": (
        "**LIME** treats the model as a black box and experiments on it.\n\n"
        "Step 1: cut the image into *superpixels* (patches of similar colour).\n\n"
        "Step 2: make hundreds of copies with random superpixels greyed out (filled with their average colour) "
        "and ask the model about each copy.\n\n"
        "Step 3: fit a *surrogate*, a simple weighted sum of “which patches were visible”, to those answers. "
        "Its weights are the explanation: a patch with a big weight raised the score when it was visible."
    ),
    "shap": (
        "**SHAP** shares out the prediction fairly between the pieces of the input, using *Shapley values* "
        "from game theory.\n\n"
        "Step 1: split the image into pieces (here four quarters, to keep it small).\n\n"
        "Step 2: for every *coalition* (group of quarters left visible; the rest is blurred), ask the model.\n\n"
        "Step 3: a quarter's Shapley value is how much adding it to a coalition raises the score, averaged "
        "fairly over all coalitions. The values always add up to the prediction minus the *base value* "
        "(the score with everything hidden)."
    ),
    "shortcut": (
        "A *shortcut* is a clue that gives the answer away in the training data without being the real reason. "
        "In the shapes-shortcut data nearly every circle carries a small magenta mark in the top-left corner. "
        "Let us see whether the model learned circles, or the mark."
    ),
    "guess": (
        "Before you look at the explanation, guess! Pick the parts of the input you think the model relies on. "
        "Then reveal the Grad-CAM map and see how much of its weight falls where you guessed."
    ),
}


def glossary_markdown(terms: Sequence[str]) -> str:
    """A bullet list of one-line definitions for the terms a section uses."""
    return "\n".join(f"- **{term}**: {GLOSSARY[term]}" for term in terms)


# --- Grad-CAM ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureMapView:
    channel: int
    weight: float
    activation: np.ndarray  # positions (h x w), raw
    contribution: float  # weight x mean activation: the map's share of the class evidence


@dataclass(frozen=True)
class GradCAMLesson:
    layer: str
    target: int
    target_label: str
    probability: float
    n_channels: int
    top_maps: tuple[FeatureMapView, ...]  # the maps that add most to the sum
    weights: np.ndarray  # every channel's weight
    weighted_sum: np.ndarray  # before ReLU (h x w)
    cam: np.ndarray  # after ReLU (h x w)
    values: np.ndarray  # the heatmap at image size, in [0, 1]


def gradcam_lesson(model: Any, image: np.ndarray, target: int | None = None, *, top: int = 6) -> GradCAMLesson:
    """Grad-CAM's steps for one image: the feature maps, their weights, the weighted sum."""
    from explainers.gradcam import gradcam_parts

    parts = gradcam_parts(model, image, target)
    acts, weights = np.asarray(parts["activations"]), np.asarray(parts["weights"])
    contributions = weights * acts.reshape(-1, acts.shape[-1]).mean(axis=0)
    order = np.argsort(-contributions)[:top]
    views = tuple(FeatureMapView(int(k), float(weights[k]), acts[..., k], float(contributions[k])) for k in order)
    return GradCAMLesson(
        layer=parts["layer"], target=parts["target"], target_label=parts["target_label"],
        probability=float(parts["probabilities"][parts["target"]]), n_channels=int(acts.shape[-1]),
        top_maps=views, weights=weights, weighted_sum=np.asarray(parts["weighted_sum"]),
        cam=np.asarray(parts["cam"]), values=np.asarray(parts["values"]),
    )


# --- LIME --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerturbedSample:
    image: np.ndarray  # uint8
    visible: np.ndarray  # bool per superpixel
    probability: float  # the model's probability for the target class on this copy


@dataclass(frozen=True)
class LimeLesson:
    target: int
    target_label: str
    probability: float
    segments: np.ndarray  # superpixel label per pixel
    samples: tuple[PerturbedSample, ...]
    segment_weights: np.ndarray  # the surrogate's weight per superpixel
    intercept: float
    score: float  # how well the surrogate copies the model (R squared, 1 = perfectly)
    values: np.ndarray  # weight of each pixel's superpixel
    num_samples: int


def superpixel_means(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Each superpixel filled with its mean colour: what LIME shows in place of a hidden patch."""
    image = np.asarray(image, dtype=np.float64)
    filled = np.empty_like(image)
    for label in np.unique(segments):
        where = segments == label
        filled[where] = image[where].mean(axis=0)
    return np.clip(np.rint(filled), 0, 255).astype(np.uint8)


def lime_lesson(
    model: Any, image: np.ndarray, target: int | None = None, *, seed: int = 0, shown: int = 6, num_samples: int = 500
) -> LimeLesson:
    """LIME on one image, plus `shown` perturbed copies with the model's answer for each."""
    from explainers.lime_explainer import paste_superpixels
    from workbench import api

    explanation = api.explain(model, "lime", [image], None if target is None else [target], seed=seed,
                              num_samples=num_samples)[0]
    segments = np.asarray(explanation.extras["segments"])
    n_segments = int(segments.max()) + 1
    rng = np.random.default_rng(seed)
    visible = rng.integers(0, 2, size=(shown, n_segments)).astype(bool)
    copies = paste_superpixels(np.asarray(image), superpixel_means(image, segments), segments, visible.astype(int))
    copies = np.clip(copies, 0, 255).astype(np.uint8)
    probabilities = model.predict_proba(list(copies))[:, explanation.target]
    weights = explanation.extras["weights"]
    return LimeLesson(
        target=explanation.target, target_label=explanation.target_label,
        probability=float(explanation.extras.get("probability", float("nan"))), segments=segments,
        samples=tuple(PerturbedSample(c, v, float(p)) for c, v, p in zip(copies, visible, probabilities)),
        segment_weights=np.array([weights.get(s, 0.0) for s in range(n_segments)]),
        intercept=float(explanation.extras.get("intercept", 0.0)), score=float(explanation.extras.get("score", float("nan"))),
        values=np.asarray(explanation.values), num_samples=num_samples,
    )


# --- SHAP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coalition:
    members: tuple[int, ...]  # visible quarters (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)
    image: np.ndarray  # uint8, the rest blurred
    probability: float


@dataclass(frozen=True)
class ShapLesson:
    target: int
    target_label: str
    coalitions: tuple[Coalition, ...]  # all 16, from none visible to all visible
    quarter_values: np.ndarray  # exact Shapley value of each quarter
    full: float  # the model's probability with everything visible
    empty: float  # ... with everything blurred: the base value of this small game
    partition_values: np.ndarray | None  # the real SHAP explainer's map (H x W), when run
    partition_base: float | None
    partition_probability: float | None


QUARTER_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right")


def quarter_masks(height: int, width: int) -> np.ndarray:
    """4 x H x W booleans: the four quarters of the image."""
    masks = np.zeros((4, height, width), dtype=bool)
    h, w = height // 2, width // 2
    masks[0, :h, :w] = masks[1, :h, w:] = masks[2, h:, :w] = masks[3, h:, w:] = True
    return masks


def exact_shapley(value_of: dict[frozenset[int], float], players: int) -> np.ndarray:
    """Shapley values from the value of every coalition: phi_i = sum |S|!(n-|S|-1)!/n! (v(S+i) - v(S))."""
    phi = np.zeros(players)
    for i in range(players):
        others = [p for p in range(players) if p != i]
        for size in range(players):
            weight = math.factorial(size) * math.factorial(players - size - 1) / math.factorial(players)
            for subset in combinations(others, size):
                s = frozenset(subset)
                phi[i] += weight * (value_of[s | {i}] - value_of[s])
    return phi


def shap_lesson(
    model: Any, image: np.ndarray, target: int | None = None, *, seed: int = 0, run_partition: bool = True,
    max_evals: int = 300,
) -> ShapLesson:
    """An exact 4-player Shapley game on the image's quarters, then the real SHAP explainer."""
    import cv2

    image = np.asarray(image, dtype=np.uint8)
    if target is None:
        target = int(model.predict_proba([image])[0].argmax())
    blurred = cv2.blur(image, (SHAP_BLUR, SHAP_BLUR))
    quarters = quarter_masks(*image.shape[:2])
    members_list = [tuple(c) for size in range(5) for c in combinations(range(4), size)]
    images = []
    for members in members_list:
        visible = quarters[list(members)].any(axis=0) if members else np.zeros(image.shape[:2], bool)
        images.append(np.where(visible[..., None], image, blurred).astype(np.uint8))
    probabilities = model.predict_proba(images)[:, target]
    value_of = {frozenset(m): float(p) for m, p in zip(members_list, probabilities)}
    coalitions = tuple(Coalition(m, im, float(p)) for m, im, p in zip(members_list, images, probabilities))
    partition = None
    if run_partition:
        from workbench import api

        partition = api.explain(model, "shap", [image], [target], seed=seed, max_evals=max_evals)[0]
    return ShapLesson(
        target=target, target_label=str(model.classes[target]), coalitions=coalitions,
        quarter_values=exact_shapley(value_of, 4), full=value_of[frozenset(range(4))], empty=value_of[frozenset()],
        partition_values=None if partition is None else np.asarray(partition.values),
        partition_base=None if partition is None else partition.base_value,
        partition_probability=None if partition is None else float(partition.extras.get("probability", float("nan"))),
    )


# --- guess, then reveal ------------------------------------------------------------------------


def cell_masks(height: int, width: int, grid: int) -> np.ndarray:
    """grid*grid x H x W booleans, row by row; cell i is row i // grid, column i % grid."""
    rows = np.minimum(np.arange(height) * grid // height, grid - 1)
    cols = np.minimum(np.arange(width) * grid // width, grid - 1)
    cell_of = rows[:, None] * grid + cols[None, :]
    return np.stack([cell_of == i for i in range(grid * grid)])


def cell_shares(values: np.ndarray, grid: int) -> np.ndarray:
    """Share of the positive attribution in each cell (sums to 1; all 0 for an empty map)."""
    positive = np.maximum(np.asarray(values, dtype=np.float64), 0.0)
    cells = cell_masks(*positive.shape, grid)
    mass = (cells * positive[None]).sum(axis=(1, 2))
    total = mass.sum()
    return mass / total if total > 0 else np.zeros_like(mass)


def top_set(shares: np.ndarray, fraction: float = 0.5) -> list[int]:
    """The fewest positions (largest first) that together hold at least `fraction` of the mass."""
    shares = np.asarray(shares, dtype=np.float64)
    if shares.sum() <= 0:
        return []
    order = np.argsort(-shares, kind="stable")
    cumulative = np.cumsum(shares[order])
    count = int(np.searchsorted(cumulative, fraction * shares.sum() - 1e-12)) + 1
    return sorted(int(i) for i in order[:count])


@dataclass(frozen=True)
class GuessScore:
    mass_share: float  # share of the explanation inside the picks
    chance: float  # what a guess of the same size scores on a uniform map
    iou: float  # overlap of the picks with the explanation's top set (intersection / union)
    top: tuple[int, ...]  # the explanation's top cells / words

    def message(self, unit: str) -> str:
        if self.mass_share >= max(0.5, 2 * self.chance):
            feel = "Great guess!"
        elif self.mass_share > self.chance:
            feel = "Better than chance."
        else:
            feel = "Not this time: the model looked elsewhere."
        return (f"{feel} Your {unit} hold {self.mass_share:.0%} of the explanation "
                f"(a random pick of the same size would hold about {self.chance:.0%}).")


def _iou(a: set[int], b: set[int]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def image_guess_score(values: np.ndarray, picked: Sequence[int], grid: int = 4) -> GuessScore:
    """Score picked grid cells against an image explanation."""
    shares = cell_shares(values, grid)
    picked_set = {int(p) for p in picked}
    if any(p < 0 or p >= grid * grid for p in picked_set):
        raise ValueError(f"cells are numbered 0 to {grid * grid - 1}")
    top = top_set(shares)
    return GuessScore(
        mass_share=float(shares[list(picked_set)].sum()) if picked_set else 0.0,
        chance=len(picked_set) / (grid * grid), iou=_iou(picked_set, set(top)), top=tuple(top),
    )


def text_guess_score(values: Sequence[float], picked: Sequence[int]) -> GuessScore:
    """Score picked word positions against a text explanation (positive evidence only)."""
    positive = np.maximum(np.asarray(values, dtype=np.float64), 0.0)
    picked_set = {int(p) for p in picked}
    total = positive.sum()
    shares = positive / total if total > 0 else np.zeros_like(positive)
    top = top_set(shares)
    n = max(len(positive), 1)
    return GuessScore(
        mass_share=float(shares[list(picked_set)].sum()) if picked_set else 0.0,
        chance=len(picked_set) / n, iou=_iou(picked_set, set(top)), top=tuple(top),
    )


def draw_grid(image: np.ndarray, grid: int, *, highlight: Sequence[int] = (), labels: bool = True) -> np.ndarray:
    """An (upscaled) RGB uint8 image with grid lines, cell numbers and highlighted cells outlined."""
    import cv2

    image = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    height, width = image.shape[:2]
    for i in range(1, grid):
        cv2.line(image, (0, i * height // grid), (width - 1, i * height // grid), (255, 255, 255), 1)
        cv2.line(image, (i * width // grid, 0), (i * width // grid, height - 1), (255, 255, 255), 1)
    scale = max(0.3, min(height, width) / grid / 150)
    for cell in range(grid * grid):
        row, col = divmod(cell, grid)
        top, left = row * height // grid, col * width // grid
        bottom, right = (row + 1) * height // grid - 1, (col + 1) * width // grid - 1
        if cell in highlight:
            cv2.rectangle(image, (left + 1, top + 1), (right - 1, bottom - 1), (255, 220, 0), 3)
        if labels:
            org = (left + 3, top + int(22 * scale) + 3)
            cv2.putText(image, str(cell + 1), org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)
            cv2.putText(image, str(cell + 1), org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image


# --- the shortcut lesson -----------------------------------------------------------------------


@dataclass(frozen=True)
class ShortcutLesson:
    version: str
    accuracy_test: float  # on its own test split (the mark still gives circles away)
    accuracy_nocue: float  # on test_nocue (the mark is on random images of every class)
    n: int
    example: np.ndarray  # a circle carrying the mark (test split)
    example_cue_mask: np.ndarray
    example_explanation: Explanation
    trap: np.ndarray | None  # a non-circle carrying the mark that the model calls a circle (test_nocue)
    trap_explanation: Explanation | None
    trap_true_label: str | None
    cue_mass: float  # mean Grad-CAM share on the mark over marked test images
    cue_share: float  # the mark's share of the image
    circles_called_circle_with_mark: float  # test_nocue: share of marked non-circles predicted "circle"
    circles_called_circle_without_mark: float  # test_nocue: share of unmarked non-circles predicted "circle"


def _first_index(condition: np.ndarray) -> int | None:
    hits = np.flatnonzero(condition)
    return int(hits[0]) if hits.size else None


def shortcut_lesson(model: Any, *, n: int = 300, method: str = "gradcam") -> ShortcutLesson:
    """The shortcut model's accuracy with and without the cue, and what its explanations show."""
    from workbench import api, datasets

    test = datasets.load(SHORTCUT_DATASET, "test")
    nocue = datasets.load(SHORTCUT_DATASET, "test_nocue")
    cue_class = list(model.classes).index(CUE_CLASS)
    test_x, test_y = np.asarray(test.x[:n]), np.asarray(test.y[:n])
    nocue_x, nocue_y = np.asarray(nocue.x[:n]), np.asarray(nocue.y[:n])
    test_pred = model.predict_proba(list(test_x)).argmax(axis=1)
    nocue_pred = model.predict_proba(list(nocue_x)).argmax(axis=1)

    marked = np.asarray(test.cue_masks[:n]).any(axis=(1, 2))
    explanations = api.explain(model, method, list(test_x[marked]), None)
    maps = np.stack([e.values for e in explanations]) if explanations else np.zeros((0,) + test_x.shape[1:3])
    cues = np.asarray(test.cue_masks[:n])[marked]
    cue_mass = float(np.nanmean(metrics.cue_mass(maps, cues))) if len(maps) else float("nan")

    example_index = _first_index(marked & (test_y == cue_class) & (test_pred == cue_class))
    example_index = example_index if example_index is not None else _first_index(marked)
    example = test_x[example_index]
    nocue_marked = np.asarray(nocue.cue_masks[:n]).any(axis=(1, 2))
    not_circle = nocue_y != cue_class
    trap_index = _first_index(nocue_marked & not_circle & (nocue_pred == cue_class))
    trap = None if trap_index is None else nocue_x[trap_index]

    def called_circle(where: np.ndarray) -> float:
        return float(np.mean(nocue_pred[where] == cue_class)) if where.any() else float("nan")

    return ShortcutLesson(
        version=model.version,
        accuracy_test=float(np.mean(test_pred == test_y)), accuracy_nocue=float(np.mean(nocue_pred == nocue_y)), n=len(test_y),
        example=example, example_cue_mask=np.asarray(test.cue_masks[example_index]), example_explanation=api.explain(model, method, [example], None)[0],
        trap=trap, trap_explanation=None if trap is None else api.explain(model, method, [trap], None)[0],
        trap_true_label=None if trap_index is None else str(model.classes[int(nocue_y[trap_index])]),
        cue_mass=cue_mass, cue_share=float(metrics.area_share(cues[0])) if len(cues) else float("nan"),
        circles_called_circle_with_mark=called_circle(nocue_marked & not_circle),
        circles_called_circle_without_mark=called_circle(~nocue_marked & not_circle),
    )


# --- fixing the shortcut: mark the reason, retrain ----------------------------------------------

# How many examples the page offers for marking at a time, and how many cued training examples
# it ranks to find them (ranking all ~1,000 would cost the page seconds of Grad-CAM).
MARK_BATCH = 12
MARK_POOL = 120
LESSON_ANNOTATOR = "learn page"


@dataclass(frozen=True)
class MarkCandidate:
    """A cued training example the class may mark: where the mark is and how much the model looks at it."""

    example_id: str
    label: str
    image: np.ndarray  # uint8
    box: tuple[int, int, int, int]  # the corner mark's bounding box, (top, left, bottom, right)
    cue_share: float  # share of the Grad-CAM mass (for its label) on the mark


def marked_examples(ledger: Any) -> set[str]:
    """Training examples of the shortcut dataset that carry a "not a reason" mark in force."""
    from labels.reasons import NOT_REASON, current_reason_marks

    return {eid for eid, marks in current_reason_marks(ledger, SHORTCUT_DATASET).items()
            if any(m.kind == NOT_REASON for m in marks)}


def mark_candidates(model: Any, ledger: Any, *, n: int = MARK_BATCH, pool: int = MARK_POOL) -> list[MarkCandidate]:
    """The `n` unmarked cued training examples (of the first `pool`) whose Grad-CAM leans most on the mark."""
    from workbench import datasets, reason_effect, simulate_reason

    train = datasets.load(SHORTCUT_DATASET, datasets.TRAIN_SPLIT)
    done = marked_examples(ledger)
    rows = [int(i) for i in np.flatnonzero(np.asarray(train.cue_masks).any(axis=(1, 2)))
            if str(train.ids[i]) not in done][:pool]
    if not rows:
        return []
    classes = list(model.classes)
    targets = [classes.index(train.classes[int(train.y[i])]) for i in rows]
    shares = reason_effect.region_shares(model, [train.x[i] for i in rows], targets,
                                         [train.cue_masks[i] for i in rows])
    order = np.argsort(-np.nan_to_num(shares, nan=-1.0), kind="stable")[:n]
    return [MarkCandidate(str(train.ids[rows[k]]), str(train.classes[int(train.y[rows[k]])]), np.asarray(train.x[rows[k]]),
                          simulate_reason.bounding_box(train.cue_masks[rows[k]]), float(shares[k])) for k in order]


def mark_not_a_reason(ledger: Any, candidates: Sequence[MarkCandidate], *, annotator: str = LESSON_ANNOTATOR,
                      actor: Identity | None = None) -> int:
    """Mark each candidate's corner mark "not a reason" in the ledger (skipping any marked meanwhile); how many."""
    from labels.reasons import NOT_REASON

    done, written = marked_examples(ledger), 0
    for candidate in candidates:
        if candidate.example_id in done:
            continue
        latest = ledger.latest_reason_event(SHORTCUT_DATASET, candidate.example_id)
        ledger.mark_reason(SHORTCUT_DATASET, candidate.example_id, NOT_REASON, boxes=[candidate.box],
                           annotator=annotator, expected_event_id=None if latest is None else latest.id,
                           note="Learn page: the corner mark is not a reason", actor=actor)
        written += 1
    return written


def fixed_versions(name: str = SHORTCUT_MODEL) -> list[str]:
    """Versions of the shortcut model retrained to fix the shortcut (with reason marks, or by an
    older workbench's paint-out), oldest first."""
    from models import store

    return [v.version for v in store.list_versions(name)
            if v.info.lesson_fix or (v.info.training and v.info.training.recipe == "reason_fine_tune")]


def fix_shortcut(
    *, config: Any = None, reason: Any = None, log: Callable[[str], None] = lambda _: None,
    created_by: str = "learn page",
) -> dict[str, Any]:
    """Retrain the shortcut model with the ledger's reason marks in this process, holding the model's lock.

    The foreground form (notebooks, `python -m workbench.lessons fix-shortcut`); the Learn page
    runs the same work as a background job (`start_fix_job`).
    """
    with jobs.holding_lock(SHORTCUT_MODEL, "lesson-fix", created_by=created_by):
        return retrain_with_reasons(config=config, reason=reason, log=log, created_by=created_by)


def retrain_with_reasons(
    *, config: Any = None, reason: Any = None, log: Callable[[str], None] = lambda _: None, created_by: str = "learn page",
    publishing: Callable[[], ContextManager[Any]] = contextlib.nullcontext, ledger: Any = None,
) -> dict[str, Any]:
    """Retrain the shortcut model on its clean training split with the penalty on the marked corners.

    The same reason-corrected fine-tuning every model gets from `workbench.retrain` when its
    examples carry "not a reason" marks (Ross et al. 2017; `models.reason_training`). Publishes a
    *candidate* and returns test and no-cue accuracy before and after. The caller holds the lock.
    """
    from labels import Ledger
    from workbench import datasets, retrain

    ledger = ledger or Ledger()
    marked = len(marked_examples(ledger))
    if not marked:
        raise WorkbenchError("no example is marked yet: mark the corner as “not a reason” on a few examples first.")
    log(f"{marked} examples marked: retraining with the penalty on the marked corners ...")
    result = retrain.retrain(SHORTCUT_MODEL, split=datasets.TRAIN_SPLIT, config=config, ledger=ledger, reason=reason,
                             created_by=created_by, log=log, publishing=publishing)
    if result.manifest.training.recipe != "reason_fine_tune":  # e.g. no mark within a quick run's subset
        log("note: no marked example was in the training data used, so this was a plain fine-tuning.")
    metrics = result.manifest.metrics
    before = result.manifest.parent_metrics
    return {"model": SHORTCUT_MODEL, "candidate": result.candidate, "parent": result.parent, "marked": marked,
            "before": {s: before.get(s).accuracy for s in ("test", "test_nocue") if before.get(s)},
            "after": {s: metrics.get(s).accuracy for s in ("test", "test_nocue") if metrics.get(s)},
            "seconds": result.seconds}


# --- the shortcut fix as a background job (workbench.jobs runs it) ------------------------------

# The Learn page knows three states; the job runner's queued and cancelled map onto them.
_FIX_STATES = {jobs.QUEUED: "running", jobs.RUNNING: "running", jobs.DONE: "done", jobs.FAILED: "failed",
               jobs.CANCELLED: "failed"}


def fix_status_view(status: dict[str, Any]) -> dict[str, Any]:
    """A fix job's status as the Learn page reads it: state running, done or failed."""
    return dict(status, state=_FIX_STATES.get(status.get("state"), "failed"))


def read_fix_status() -> dict[str, Any] | None:
    """The last shortcut-fix job's status ({"state": running|done|failed, ...}), None if never run."""
    latest = jobs.latest_job(SHORTCUT_MODEL, jobs.LESSON_FIX_SHORTCUT)
    return None if latest is None else fix_status_view(latest)


def quick_settings() -> tuple[Any, Any]:
    """(TrainConfig, ReasonConfig) of a tiny reason-corrected fine-tuning: one epoch on the
    training split's first `QUICK_CONFIG.limit` examples (mark examples among those), for smoke tests."""
    from models.reason_training import ReasonConfig
    from workbench import samples

    return samples.quick_config(), ReasonConfig(epochs=1)


def start_fix_job(quick: bool = False, *, created_by: str = "learn page",
                  actor: Identity | None = None) -> dict[str, Any]:
    """Start the shortcut fix as a background job (training never runs in the page's thread).

    It publishes a candidate version, so `actor` (default: the local operator) must be a
    maintainer (AccessDenied otherwise)."""
    running = jobs.active_job(SHORTCUT_MODEL)
    if running is not None:
        raise WorkbenchError(f"the shortcut model is already being retrained (job {running['job_id']}); "
                             "wait for it to finish.")
    job_id = jobs.start(jobs.LESSON_FIX_SHORTCUT, SHORTCUT_MODEL, created_by=created_by, quick=quick, actor=actor)
    return fix_status_view(jobs.read_status(job_id))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.lessons")
    sub = parser.add_subparsers(dest="command", required=True)
    fix = sub.add_parser("fix-shortcut", help="retrain shapes-shortcut with the ledger's 'not a reason' marks")
    fix.add_argument("--quick", action="store_true", help="one short epoch, for smoke tests")
    args = parser.parse_args(argv)
    config, reason = quick_settings() if args.quick else (None, None)
    fix_shortcut(config=config, reason=reason, log=lambda message: print(message, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
