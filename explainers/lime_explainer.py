"""LIME for images (superpixels) and text (tokens).

Images use `lime.lime_image.LimeImageExplainer` itself: its segmentation step, fudged
image, cosine distances, kernel and weighted Ridge surrogate. Two things make it fast:
the classifier is `LoadedModel.forward` on batches of `batch_size` (256 images) perturbed
images instead of `model.predict` on batches of 10, and `data_labels` (LIME's per-sample
Python loop that pastes superpixels) is replaced by the same computation vectorised over
a whole batch. It draws the same random numbers in the same order, so it builds exactly
the images the library would.

Hidden superpixels take their own mean colour (LIME's default, `hide_color=None`), or a
constant grey value when `hide_color` is a number. The map gives every pixel its
superpixel's surrogate weight, positive (evidence for the target) or negative.

Text uses the same algorithm as `lime.lime_text.LimeTextExplainer(bow=False)`, written
natively and batched, because the library spends most of its time in per-sample Python:
  1. sample n-1 perturbations; each removes k tokens, k uniform in 1..d, at random positions
     (row 0 is the text itself);
  2. the perturbed text is the kept tokens joined with spaces (the model re-tokenizes it,
     so a removed token is simply absent); duplicate perturbations are evaluated once;
  3. distance = 100 x cosine distance between the binary keep-mask and the all-ones mask,
     kernel = sqrt(exp(-distance^2 / width^2)) with width 25 (LIME's text default);
  4. fit Ridge(alpha=1) on the target probability with the kernel as sample weights.
Unlike LIME's default `feature_selection="auto"` we keep every token as a feature (LIME's
forward selection and highest-weights selection keep them all as well when asked for as
many features as there are tokens, which is what an explanation of every token needs).
Tokens are exactly `model.tokenize(text)` (truncated to the sequence length).

Deterministic for a given seed: LIME's random_state and the segmentation use `seed`.

Rounds (stopping="stable", the default; see explainers.rounds): the perturbations of the
full budget are drawn once, with the same random draws as the fixed budget, and round k
fits the surrogate on the first 150 x 2^k of them, scoring only rows not scored before.
The run stops when two consecutive maps agree, so it never scores more than the budget,
and a run that reaches the last round fits on exactly the fixed budget's samples.
"""
from __future__ import annotations

import functools
import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from explainers.base import Explainer
from explainers.params import MethodParams, param
from explainers.perturb import (
    batched_probabilities,
    choose_targets,
    class_label,
    default_batch_size,
    forward_fn,
    prepare_texts,
)
from explainers.registry import register
from explainers.rounds import (
    LIME_FIRST_ROUND,
    LIME_PREVIEW_ROUND,
    MemoForward,
    OnRound,
    RoundResult,
    fixed_record,
    round_budgets,
    round_plan,
    run_rounds,
    stopping_param,
)
from foundation.types import Explanation, Modality

SEGMENTATIONS = ("slic", "quickshift")
LIME_QUICKSHIFT_RNG = 42  # what lime's default call ends up using (see segment_image)
SEGMENTATION_LABELS = {"slic": "SLIC", "quickshift": "Quickshift"}
IMAGE_KERNEL_WIDTH = 0.25  # LimeImageExplainer's default
TEXT_KERNEL_WIDTH = 25.0  # LimeTextExplainer's default
DEFAULT_SAMPLES = {Modality.IMAGE: 1000, Modality.TEXT: 5000}


# --- images -------------------------------------------------------------------------------


def segment_image(
    image: np.ndarray, method: str = "slic", *, n_segments: int = 50, kernel_size: int = 4, seed: int = 0
) -> np.ndarray:
    """Superpixels of an RGB uint8 image as int32 labels 0..k-1 (contiguous, as LIME requires).

    slic: about `n_segments` compact regions (compactness 10, sigma 1); deterministic.
    quickshift: LIME's default settings (max_dist 200, ratio 0.2) with `kernel_size`, its
    random tie-breaking seeded as lime's default call seeds it (LIME_QUICKSHIFT_RNG; `seed`
    is not used: see below).
    """
    from skimage.segmentation import quickshift, slic

    if method == "slic":
        labels = slic(image, n_segments=n_segments, compactness=10.0, sigma=1.0, start_label=0, channel_axis=-1)
    elif method == "quickshift":
        # lime's SegmentationAlgorithm passes random_seed, which scikit-image renamed rng, so lime
        # drops it and its default call segments with quickshift's default rng=42; so do we,
        # whatever the seed, so a seed gives the superpixels AND draws of lime's call with it.
        labels = quickshift(image, kernel_size=kernel_size, max_dist=200, ratio=0.2, rng=LIME_QUICKSHIFT_RNG,
                            channel_axis=-1)
    else:
        raise ValueError(f"unknown segmentation {method!r}; choose one of {', '.join(SEGMENTATIONS)}")
    # LIME numbers its features 0..k-1 and looks superpixels up by those numbers.
    _, contiguous = np.unique(labels, return_inverse=True)
    return contiguous.reshape(labels.shape).astype(np.int32)


def paste_superpixels(
    image: np.ndarray, fudged_image: np.ndarray, segments: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """For each 0/1 row over superpixels, the image with the 0 superpixels taken from fudged_image."""
    # B x H x W in C order. `rows[:, segments]` would put B innermost, and so would the batch built
    # from it: a copy before every model call, 0.6 s of LIME's 4.5 s at 1,000 samples on a 224 model.
    hidden = np.take(np.asarray(rows) == 0, segments, axis=1)
    return np.where(hidden[..., None], fudged_image[None], image[None])


@functools.cache
def _batched_lime_image_class() -> type:
    # Built on first use so importing this module does not import lime.
    from lime import lime_image

    class BatchedLimeImageExplainer(lime_image.LimeImageExplainer):
        """LimeImageExplainer whose neighbourhood images are built a batch at a time."""

        # Set for rounds: the perturbations drawn once for the whole budget (see SamplePool).
        sample_pool: "SamplePool | None" = None
        # Set by LIMEExplainer: (image, fudged_image, segments, rows) -> labels, pasting in the
        # model's float space (see RowScorer); None pastes pixels and calls classifier_fn.
        row_scorer: "RowScorer | None" = None

        def data_labels(  # type: ignore[override]
            self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10
        ):
            score = self._scorer(image, fudged_image, segments, classifier_fn)
            if self.sample_pool is not None:
                return self.sample_pool.take(num_samples, score, batch_size)
            # Same random draws, in the same order, as the library's loop.
            n_features = np.unique(segments).shape[0]
            data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
            data[0, :] = 1
            labels = [score(data[start : start + batch_size]) for start in range(0, num_samples, batch_size)]
            return data, np.concatenate(labels, axis=0)

        def _scorer(self, image, fudged_image, segments, classifier_fn) -> Callable[[np.ndarray], np.ndarray]:
            if self.row_scorer is not None:
                return self.row_scorer.bind(image, fudged_image, segments)

            def score(rows: np.ndarray) -> np.ndarray:
                return np.asarray(classifier_fn(paste_superpixels(image, fudged_image, segments, rows)))

            return score

    return BatchedLimeImageExplainer


def _batched_lime_image_explainer(**kwargs: Any) -> Any:
    return _batched_lime_image_class()(**kwargs)


class SamplePool:
    """LIME's perturbation rows for one image and a whole budget, drawn once as the library
    draws them; `take(n, ...)` returns the first n rows and their labels, scoring only the
    rows no earlier call scored."""

    def __init__(self, n_features: int, budget: int, seed: int) -> None:
        random_state = np.random.RandomState(seed)  # what LIME's check_random_state(seed) builds
        self.data = random_state.randint(0, 2, budget * n_features).reshape((budget, n_features))
        self.data[0, :] = 1
        self._labels: list[np.ndarray] = []
        self.scored = 0
        self._lock = threading.Lock()  # two classes of one image may be explained at once

    def take(
        self, n: int, score: Callable[[np.ndarray], np.ndarray], batch_size: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first n rows and their labels; `score(rows)` labels the rows not labelled before."""
        with self._lock:
            while self.scored < n:
                end = min(n, self.scored + batch_size)
                self._labels.append(np.asarray(score(self.data[self.scored : end])))
                self.scored = end
            if len(self._labels) > 1:
                self._labels = [np.concatenate(self._labels, axis=0)]
            return self.data[:n], self._labels[0][:n]


# Scored perturbation pools of recent images, per loaded model: the model's answers hold every
# class's probability, so explaining another class of the same image with the same settings
# refits LIME's surrogate on them without a single model call.
_POOLS: "weakref.WeakKeyDictionary[Any, OrderedDict[tuple[Any, ...], SamplePool]]" = weakref.WeakKeyDictionary()
_POOLS_LOCK = threading.Lock()
POOLS_KEPT = 8  # per model; a pool is budget x (superpixels + classes) numbers


def shared_pool(
    model: Any, image: np.ndarray, segments: np.ndarray, hide_color: float | None, budget: int, seed: int
) -> SamplePool:
    """The model's pool of LIME perturbations for this image, segmentation, hiding and seed."""
    key = (_digest(image), _digest(segments), hide_color, int(budget), int(seed))
    with _POOLS_LOCK:
        try:
            pools = _POOLS.setdefault(model, OrderedDict())
        except TypeError:  # a model that cannot be weakly referenced: no sharing
            return SamplePool(int(segments.max()) + 1, budget, seed)
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = SamplePool(int(segments.max()) + 1, budget, seed)
            while len(pools) > POOLS_KEPT:
                pools.popitem(last=False)
        else:
            pools.move_to_end(key)
    return pool


def forget_pools() -> None:
    """Drop every model's scored pools (benchmarks: a timed run must score its own perturbations)."""
    with _POOLS_LOCK:
        _POOLS.clear()


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return hashlib.blake2b(array.tobytes() + str((array.shape, array.dtype)).encode(), digest_size=16).hexdigest()


class RowScorer:
    """LIME's rows scored by pasting superpixels in the model's float space.

    The model's preprocessing (models.model_io: 0-1, -1..1, caffe, torch, custom, luminance) is
    per pixel, so preprocessing the image and the fudged image once and pasting the floats
    gives bit for bit the batch that pasting uint8 pixels and preprocessing every perturbed
    copy gives; on a 224 x 224 model that skipped copy and conversion was 2.5 s of LIME's
    14 s at 1,000 samples (the forward passes were 10.5 s).
    """

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size

    def bind(self, image: np.ndarray, fudged_image: np.ndarray, segments: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        prepared = self.model.image_tensor(np.stack([image, fudged_image]))
        kept, hidden_value = prepared[0], prepared[1]

        def score(rows: np.ndarray) -> np.ndarray:
            batch = paste_superpixels(kept, hidden_value, segments, rows)
            return batched_probabilities(self.model, batch, self.batch_size)

        return score


# Segmentations of recent images, by (image bytes digest, settings): explaining another class of
# the same image, or again with another budget, does not segment again (0.4 s for quickshift at 224).
_SEGMENTS: "OrderedDict[tuple[Any, ...], np.ndarray]" = OrderedDict()
_SEGMENTS_LOCK = threading.Lock()
SEGMENTATIONS_KEPT = 16
segmentation_runs = 0  # segmentations computed in this process (tests check the reuse)


def cached_segments(
    image: np.ndarray, method: str, *, n_segments: int, kernel_size: int, seed: int
) -> np.ndarray:
    """segment_image, computed once per image and settings (a read-only array)."""
    global segmentation_runs
    array = np.ascontiguousarray(image)
    key = (_digest(array), method, int(n_segments) if method == "slic" else None,
           int(kernel_size) if method == "quickshift" else None)
    with _SEGMENTS_LOCK:
        found = _SEGMENTS.get(key)
        if found is not None:
            _SEGMENTS.move_to_end(key)
            return found
    segments = segment_image(array, method, n_segments=n_segments, kernel_size=kernel_size, seed=seed)
    segments.setflags(write=False)
    with _SEGMENTS_LOCK:
        segmentation_runs += 1
        _SEGMENTS[key] = segments
        while len(_SEGMENTS) > SEGMENTATIONS_KEPT:
            _SEGMENTS.popitem(last=False)
    return segments


def forget_segments() -> None:
    """Drop the kept segmentations (benchmarks: a timed run must segment its image as a new one would)."""
    with _SEGMENTS_LOCK:
        _SEGMENTS.clear()


# --- text ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextSurrogate:
    weights: np.ndarray  # one per token
    intercept: float
    score: float  # weighted R^2 of the surrogate on the neighbourhood
    local_prediction: float  # the surrogate's output for the unperturbed text
    distinct_texts: int  # model evaluations actually made


def sample_keep_masks(n_tokens: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """num_samples x n_tokens booleans; row 0 keeps everything, each other row removes k
    tokens (k uniform in 1..n_tokens) at uniformly random positions, as LIME does."""
    masks = np.ones((num_samples, n_tokens), dtype=bool)
    if num_samples < 2 or n_tokens == 0:
        return masks
    removed_counts = rng.integers(1, n_tokens + 1, size=num_samples - 1)
    # The k smallest of n uniform draws sit at a uniformly random set of k positions.
    ranks = rng.random((num_samples - 1, n_tokens)).argsort(axis=1).argsort(axis=1)
    masks[1:] = ranks >= removed_counts[:, None]
    return masks


def kernel_weights(masks: np.ndarray, kernel_width: float = TEXT_KERNEL_WIDTH) -> np.ndarray:
    """LIME's text sample weights: cosine distance to the all-ones mask, x100, through its kernel."""
    n_tokens = masks.shape[1]
    kept = masks.sum(axis=1).astype(np.float64)
    # cos(mask, ones) = kept / (sqrt(kept) * sqrt(n)); an empty mask has similarity 0.
    similarity = np.sqrt(kept / n_tokens) if n_tokens else np.zeros_like(kept)
    distances = (1.0 - similarity) * 100.0
    return np.sqrt(np.exp(-(distances**2) / kernel_width**2))


def masked_texts(tokens: Sequence[str], masks: np.ndarray) -> list[str]:
    """The kept tokens of each mask joined with single spaces."""
    words = np.asarray(tokens, dtype=object)
    return [" ".join(words[row]) for row in masks]


def lime_text_surrogate(
    predict: Callable[[list[str]], np.ndarray],
    tokens: Sequence[str],
    target: int,
    *,
    num_samples: int = 5000,
    seed: int = 0,
    kernel_width: float = TEXT_KERNEL_WIDTH,
    masks: np.ndarray | None = None,
) -> TextSurrogate:
    """LIME's text algorithm, batched: one weight per token for class `target`.

    `masks`: keep-masks drawn beforehand (rounds fit on prefixes of one draw); by default
    `num_samples` of them are drawn from `seed`.
    """
    from sklearn.linear_model import Ridge

    if masks is None:
        masks = sample_keep_masks(len(tokens), num_samples, np.random.default_rng(seed))
    # Short texts have few distinct perturbations; the model sees each one once.
    unique_masks, inverse = np.unique(masks, axis=0, return_inverse=True)
    probabilities = np.asarray(predict(masked_texts(tokens, unique_masks)), dtype=np.float64)
    labels = probabilities[np.ravel(inverse), target]
    weights = kernel_weights(masks, kernel_width)
    features = masks.astype(np.float64)
    ridge = Ridge(alpha=1.0, fit_intercept=True)
    ridge.fit(features, labels, sample_weight=weights)
    return TextSurrogate(
        weights=np.asarray(ridge.coef_, dtype=np.float64),
        intercept=float(ridge.intercept_),
        score=float(ridge.score(features, labels, sample_weight=weights)),
        local_prediction=float(ridge.predict(features[:1])[0]),
        distinct_texts=len(unique_masks),
    )


# --- the explainer ------------------------------------------------------------------------

IMAGE_ONLY = frozenset({Modality.IMAGE})


@dataclass(frozen=True)
class LIMEParams(MethodParams):
    """LIME's budget and, for images, how the picture is cut into superpixels and hidden."""

    seeded = True

    num_samples: int | None = param(
        None, int, "Samples (num_samples)", minimum=2, maximum=1_000_000, offered=(100, 10000), step=100,
        by_modality=DEFAULT_SAMPLES,
        help="How many perturbed copies the linear surrogate is fitted on. More = steadier weights, slower.",
        summary="{value:,} samples",
    )
    segmentation: str = param(
        "slic", str, "Segmentation", choices=SEGMENTATION_LABELS, modalities=IMAGE_ONLY,
        help="How the image is cut into superpixels, the pieces LIME switches on and off.",
        summary={"slic": "SLIC, about {n_segments} segments", "quickshift": "quickshift segments"},
    )
    n_segments: int = param(
        50, int, "Segments (SLIC)", minimum=1, maximum=10_000, offered=(5, 300), step=5, modalities=IMAGE_ONLY,
        when={"segmentation": "slic"},
        help="About how many superpixels SLIC makes (quickshift chooses its own number).",
    )
    kernel_size: int = param(
        4, int, "Quickshift kernel size", minimum=1, maximum=64, modalities=IMAGE_ONLY,
        when={"segmentation": "quickshift"}, shown=False,
        help="The width of quickshift's smoothing kernel: larger = fewer, bigger superpixels.",
    )
    hide_color: float | None = param(
        None, float, "Hidden superpixel colour", minimum=0, maximum=255, optional=True, modalities=IMAGE_ONLY,
        shown=False, help="The grey value (0-255) a hidden superpixel becomes; by default its own mean colour.",
    )
    batch_size: int | None = param(
        None, int, "Batch size", minimum=1, maximum=100_000, optional=True, shown=False,
        help="Perturbed inputs per model call; by default chosen for the model.",
    )
    kernel_width: float | None = param(
        None, float, "Kernel width", minimum=1e-6, maximum=1e6, shown=False,
        by_modality={Modality.IMAGE: IMAGE_KERNEL_WIDTH, Modality.TEXT: TEXT_KERNEL_WIDTH},
        help="How fast a sample's weight falls with its distance from the input (LIME's default).",
    )
    stopping: str = stopping_param("sample counts")



@register
class LIMEExplainer(Explainer):
    """LIME: superpixels for images, tokens for text; a weighted linear surrogate per input."""

    name = "lime"
    title = "LIME"
    order = 30  # thousands of samples per input: the slowest, last
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE, Modality.TEXT})
    Params = LIMEParams

    def __init__(
        self,
        model: Any,
        num_samples: int | None = None,
        segmentation: str = "slic",
        n_segments: int = 50,
        kernel_size: int = 4,
        hide_color: float | None = None,
        batch_size: int | None = None,
        kernel_width: float | None = None,
        stopping: str = "stable",
    ) -> None:
        super().__init__(
            model,
            num_samples=num_samples,
            segmentation=segmentation,
            n_segments=n_segments,
            kernel_size=kernel_size,
            hide_color=hide_color,
            batch_size=batch_size,
            kernel_width=kernel_width,
            stopping=stopping,
        )
        settings = self.settings
        self.adaptive = settings.stopping == "stable"
        self.is_text = model.modality is Modality.TEXT
        self.num_samples = settings.num_samples
        self.batch_size = default_batch_size(model) if settings.batch_size is None else settings.batch_size
        self.settings = replace(settings, batch_size=self.batch_size)
        self.kernel_width = settings.kernel_width
        self.segmentation = settings.segmentation
        self.n_segments = settings.n_segments
        self.kernel_size = settings.kernel_size
        self.hide_color = settings.hide_color
        self._predict = forward_fn(model, self.batch_size)

    def _masker_description(self) -> str:
        if self.is_text:
            return "remove"
        return "superpixel mean" if self.hide_color is None else f"constant {self.hide_color:g}"

    def explain(
        self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0,
        on_round: OnRound | None = None,
    ) -> list[Explanation]:
        """One surrogate per input, for its target class (the predicted class when None).

        With stopping="stable" (the default) each input runs in rounds; `on_round(round_index,
        explanation)` receives the map after every round, its extras saying "refining" until
        the last (then "stable" or "budget"). Inputs are explained one after another.
        """
        if self.is_text:
            return self._explain_texts(inputs, targets, seed, on_round)
        return self._explain_images(inputs, targets, seed, on_round)

    # images

    def segments(self, image: np.ndarray, seed: int = 0) -> np.ndarray:
        """The image's superpixels for these settings (computed once per image and settings)."""
        return cached_segments(
            image, self.segmentation, n_segments=self.n_segments, kernel_size=self.kernel_size, seed=seed
        )

    def _surrogate_image(
        self, explainer: Any, image: np.ndarray, target: int, segments: np.ndarray, num_samples: int, seed: int
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """LIME's fit on num_samples perturbations: per-segment weights and the fit's figures."""
        n_features = int(segments.max()) + 1
        result = explainer.explain_instance(
            image,
            self._predict,
            labels=(target,),
            hide_color=self.hide_color,
            top_labels=None,
            num_features=n_features,
            num_samples=num_samples,
            batch_size=self.batch_size,
            segmentation_fn=lambda _image, segments=segments: segments,
            random_seed=seed,
        )
        weights = {int(feature): float(weight) for feature, weight in result.local_exp[target]}
        per_segment = np.array([weights.get(s, 0.0) for s in range(n_features)], dtype=np.float64)
        intercept = float(result.intercept[target])
        return per_segment, {
            "weights": weights,
            "score": float(result.score),
            "intercept": intercept,
            "local_prediction": float(np.ravel(result.local_pred)[0]),
        }

    def _image_rounds(
        self, image: np.ndarray, target: int, segments: np.ndarray, seed: int,
        report: Callable[[int, np.ndarray, dict[str, Any]], None],
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Per-segment weights and extras: the fixed budget, or rounds over one pool of samples."""
        explainer = _batched_lime_image_explainer(
            kernel_width=self.kernel_width, feature_selection="none", random_state=seed
        )
        explainer.row_scorer = RowScorer(self.model, self.batch_size)
        if not self.adaptive:
            per_segment, fit = self._surrogate_image(explainer, image, target, segments, self.num_samples, seed)
            return per_segment, {**fit, **fixed_record(self.num_samples, self.num_samples)}
        pool = shared_pool(self.model, image, segments, self.hide_color, self.num_samples, seed)
        explainer.sample_pool = pool
        reused = pool.scored

        def compute(budget: int) -> RoundResult:
            per_segment, fit = self._surrogate_image(explainer, image, target, segments, budget, seed)
            fit["reused_samples"] = min(reused, budget)
            # The map rests on the pool's first `budget` rows (scored now or for another class).
            return RoundResult(comparable=per_segment, payload=(per_segment, fit), evaluations=budget)

        def notify(index: int, result: RoundResult, record: dict[str, Any]) -> None:
            per_segment, fit = result.payload
            report(index, per_segment, {**fit, **record})

        budgets, previews = round_plan(LIME_FIRST_ROUND, self.num_samples, LIME_PREVIEW_ROUND)
        result, record = run_rounds(budgets, compute, notify, previews)
        per_segment, fit = result.payload
        return per_segment, {**fit, **record}

    def _explain_images(
        self, inputs: Sequence[Any], targets: Sequence[int] | None, seed: int, on_round: OnRound | None = None
    ) -> list[Explanation]:
        started = time.perf_counter()
        images = self.model.prepare_images(inputs)
        probabilities = batched_probabilities(self.model, self.model.image_tensor(images), self.batch_size)
        chosen = choose_targets(targets, probabilities)
        shared = (time.perf_counter() - started) / max(len(images), 1)
        explanations = []
        for image, target, probs in zip(images, chosen, probabilities):
            begun = time.perf_counter()
            segments = self.segments(image, seed)

            def build(per_segment: np.ndarray, fit: dict[str, Any]) -> Explanation:
                return Explanation(
                    method=self.name,
                    modality=Modality.IMAGE,
                    target=target,
                    target_label=class_label(self.model, target),
                    values=per_segment[segments],
                    model_name=self.model.name,
                    model_version=self.model.version,
                    seconds=shared + time.perf_counter() - begun,
                    params=self.params,
                    seed=seed,
                    base_value=fit["intercept"],
                    extras={
                        "masker": self._masker_description(),
                        "segments": segments,
                        **fit,
                        "probability": float(probs[target]),
                        "model_evaluations": fit["evaluations_used"],
                    },
                )

            def report(index: int, per_segment: np.ndarray, fit: dict[str, Any]) -> None:
                if on_round is not None:
                    on_round(index, build(per_segment, fit))

            per_segment, fit = self._image_rounds(image, target, segments, seed, report)
            explanations.append(build(per_segment, fit))
        return explanations

    # text

    def _text_rounds(
        self, tokens: tuple[str, ...], target: int, seed: int, report: Callable[[int, TextSurrogate, dict], None],
    ) -> tuple[TextSurrogate, dict[str, Any]]:
        """The token surrogate and its rounds record: the fixed budget, or rounds over one draw of masks."""
        if not self.adaptive:
            surrogate = lime_text_surrogate(
                self._predict, tokens, target, num_samples=self.num_samples, seed=seed, kernel_width=self.kernel_width,
            )
            return surrogate, fixed_record(self.num_samples, surrogate.distinct_texts)
        masks = sample_keep_masks(len(tokens), self.num_samples, np.random.default_rng(seed))
        memo = MemoForward(self._predict)

        def compute(budget: int) -> RoundResult:
            surrogate = lime_text_surrogate(memo, tokens, target, masks=masks[:budget], kernel_width=self.kernel_width)
            return RoundResult(comparable=surrogate.weights, payload=surrogate, evaluations=memo.evaluations)

        def notify(index: int, result: RoundResult, record: dict[str, Any]) -> None:
            report(index, result.payload, record)

        result, record = run_rounds(round_budgets(LIME_FIRST_ROUND, self.num_samples), compute, notify)
        return result.payload, record

    def _explain_texts(
        self, inputs: Sequence[Any], targets: Sequence[int] | None, seed: int, on_round: OnRound | None = None
    ) -> list[Explanation]:
        started = time.perf_counter()
        texts = [str(t) for t in inputs]
        probabilities = batched_probabilities(self.model, prepare_texts(texts), self.batch_size)
        chosen = choose_targets(targets, probabilities)
        shared = (time.perf_counter() - started) / max(len(texts), 1)
        explanations = []
        for text, target, probs in zip(texts, chosen, probabilities):
            begun = time.perf_counter()
            tokens = tuple(self.model.tokenize(text))

            def build(surrogate: TextSurrogate | None, record: dict[str, Any] | None) -> Explanation:
                extras: dict[str, Any] = {"probability": float(probs[target]), "masker": self._masker_description()}
                if surrogate is not None and record is not None:
                    values, intercept = surrogate.weights, surrogate.intercept
                    extras.update(
                        score=surrogate.score,
                        intercept=intercept,
                        local_prediction=surrogate.local_prediction,
                        model_evaluations=record["evaluations_used"],
                        **record,
                    )
                else:  # nothing the model reads: nothing to attribute
                    values, intercept = np.zeros(0), None
                return Explanation(
                    method=self.name,
                    modality=Modality.TEXT,
                    target=target,
                    target_label=class_label(self.model, target),
                    values=values,
                    model_name=self.model.name,
                    model_version=self.model.version,
                    seconds=shared + time.perf_counter() - begun,
                    params=self.params,
                    seed=seed,
                    tokens=tokens,
                    base_value=intercept,
                    extras=extras,
                )

            def report(index: int, surrogate: TextSurrogate, record: dict[str, Any]) -> None:
                if on_round is not None:
                    on_round(index, build(surrogate, record))

            if tokens:
                explanations.append(build(*self._text_rounds(tokens, target, seed, report)))
            else:
                explanations.append(build(None, None))
        return explanations
