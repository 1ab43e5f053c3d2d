"""SHAP for images and text (model-agnostic Partition explainer) and for differentiable
image models (GradientExplainer, i.e. expected gradients).

Why this is faster than the usual `shap.Explainer(model.predict, masker)` call: the model
function here is `LoadedModel.forward` (one compiled tf.function) over batches of
hundreds of masked variants, where the usual call pays `model.predict`'s fixed cost for
every batch of 10 (images) or 5 (text) variants. The masker is built once per model (its
partition tree once per input shape), the Partition explainer once per input (its own
memoised model function: no state shared between concurrent explanations), and only the
target class is explained, so Partition spends its whole evaluation budget on that class.
For images the model function receives Partition's masks and paints each distinct mask
once (MaskScorer), across the rounds too.

Image maps are the SHAP values summed over the three colour channels (H x W);
`base_value` is the model's output for the target with every pixel masked (blurred or
inpainted). Partition values are additive: they sum to f(x) - base_value.

Text: a masked token is *removed*. The masker replaces it with "...", which the model's
own standardisation deletes, so the model reads the remaining tokens only. Tokens past
the model's sequence length are never read, so they are neither shown nor attributed.

Determinism: Partition breaks ties in its priority queue with numpy's global random
generator and GradientExplainer reseeds that generator itself; both run with the global
generator seeded from `seed`, and its previous state is restored afterwards.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np

from explainers.base import Explainer
from explainers.params import MethodParams, param
from explainers.perturb import (
    batched_probabilities,
    choose_targets,
    class_label,
    default_batch_size,
    forward_fn,
    model_token_spans,
    prepare_texts,
    token_spans,
)
from explainers.registry import register
from explainers.rounds import (
    SHAP_FIRST_ROUND,
    SHAP_PREVIEW_ROUND,
    MemoForward,
    OnRound,
    RoundResult,
    fixed_record,
    round_plan,
    run_rounds,
    stopping_param,
)
from foundation.types import Explanation, Modality

IMAGE_MASKERS = ("blur", "inpaint")
IMAGE_MASKER_LABELS = {"blur": "Blur", "inpaint": "Inpaint (Telea)"}
IMAGE_ONLY = frozenset({Modality.IMAGE})
# Punctuation only: the model's standardisation deletes it, so a masked token simply vanishes.
TEXT_MASK_TOKEN = "..."


# Serialises the seeded blocks so two explanations never draw from the global generator at
# once. Always taken before a model's lock (never inside it), so the two cannot deadlock.
_GLOBAL_NUMPY_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the block (shap draws from it), then restore it."""
    with _GLOBAL_NUMPY_LOCK:
        state = np.random.get_state()
        np.random.seed(int(seed) % (2**32))
        try:
            yield
        finally:
            np.random.set_state(state)


class ModelTokenizer:
    """A tokenizer in the minimal HuggingFace shape `shap.maskers.Text` accepts.

    Its tokens are exactly the model's (`LoadedModel.tokenize`), with offsets into the
    original text, so each SHAP value lines up with one token the model reads.
    """

    mask_token = TEXT_MASK_TOKEN
    # Any id that is not a token string; setting it stops the masker from tokenizing the
    # mask token (which has no tokens of its own).
    mask_token_id = -1

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit

    def __call__(self, text: str, return_offsets_mapping: bool = True) -> dict[str, list[Any]]:
        spans = token_spans(text, self.limit)
        out: dict[str, list[Any]] = {"input_ids": [token for _, _, token in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = [(start, end) for start, end, _ in spans]
        return out


def _partition_explainer(model_fn: Any, masker: Any) -> Any:
    import shap

    return shap.explainers.Partition(model_fn, masker)


# Image partition trees, by image shape: (height * width * 3 - 1) x 4 float64 each (4.8 MB at 224).
_PARTITION_TREES: dict[tuple[int, ...], np.ndarray] = {}
_PARTITION_TREES_LOCK = threading.Lock()
PARTITION_TREES_KEPT = 4
partition_tree_builds = 0  # how many trees were built in this process (tests check the reuse)


def image_partition_tree(shape: tuple[int, ...]) -> np.ndarray:
    """shap's axis-aligned partition tree of an image of `shape`, built once per shape.

    Why: the tree depends on the shape alone, yet `shap.maskers.Image` rebuilds it for every
    masker, and every explanation builds a masker: 1.2 s at 224 x 224 on this machine (of a
    first SHAP map that should come within 2 s), paid again for each class and each setting.
    The array is read-only so no explanation can change what the next one uses.
    """
    global partition_tree_builds
    import shap

    key = tuple(int(d) for d in shape)
    with _PARTITION_TREES_LOCK:
        tree = _PARTITION_TREES.get(key)
        if tree is None:
            builder = shap.maskers.Image.__new__(shap.maskers.Image)
            builder.input_shape = key
            shap.maskers.Image.build_partition_tree(builder)
            tree = builder.clustering
            tree.setflags(write=False)
            while len(_PARTITION_TREES) >= PARTITION_TREES_KEPT:
                _PARTITION_TREES.pop(next(iter(_PARTITION_TREES)))
            _PARTITION_TREES[key] = tree
            partition_tree_builds += 1
    return tree


@functools.cache
def _image_masker_class() -> type:
    # Built on first use so importing this module does not import shap.
    import shap

    class WorkbenchImageMasker(shap.maskers.Image):
        """shap's image masker, with two changes: the partition tree comes from
        `image_partition_tree`, and Partition's model function receives the masks themselves,
        `paint` turning the ones it has not scored yet into images (the masker's images, value
        for value).

        Why the masks: the model function can then recognise a mask it has scored before by its
        packed bits (19 KB at 224 x 224) instead of hashing a 600 KB image, and paints only what
        it will score. shap's own masker also blurs the whole image again for every mask (its
        cache is keyed by the id of a fresh view, so it never hits): 0.4 ms each at 224. At 500
        evaluations in rounds that was 1.6 s of a 4.1 s map.
        """

        def build_partition_tree(self) -> None:
            self.clustering = image_partition_tree(tuple(self.input_shape))

        def __call__(self, mask: Any, x: Any) -> tuple[np.ndarray]:
            size = int(np.prod(self.input_shape))
            if mask is None:
                return (np.zeros((1, size), dtype=bool),)
            # A copy: Partition reuses its mask buffers, and the row is kept until the batch is scored.
            return (np.array(mask, dtype=bool).reshape(1, size),)

        def fill(self, x: np.ndarray) -> np.ndarray | None:
            """What a hidden pixel of `x` becomes when that does not depend on the mask (blur), else None."""
            if self.blur_kernel is None:
                return None
            import cv2

            return cv2.blur(np.asarray(x).reshape(self.input_shape), self.blur_kernel).ravel()

        def paint(self, masks: np.ndarray, x: np.ndarray, fill: np.ndarray | None) -> np.ndarray:
            """The masked images (N x H x W x 3) of `x` under boolean `masks` (N x H*W*3; True = kept)."""
            flat = np.asarray(x).ravel()
            if fill is not None:
                painted = np.where(masks, flat, fill)
            else:
                method = "INPAINT_TELEA" if self.mask_value == "inpaint_telea" else "INPAINT_NS"
                painted = np.stack([self.inpaint(flat, ~mask, method) for mask in masks])
            return painted.reshape(len(masks), *self.input_shape)

    return WorkbenchImageMasker


def image_masker(mask_value: str, shape: tuple[int, int, int]) -> Any:
    """The image masker SHAP uses: `shap.maskers.Image(mask_value, shape)` with a shared partition
    tree, handing Partition's masks to the model function (a MaskScorer) to paint."""
    return _image_masker_class()(mask_value, shape)


class MaskScorer:
    """Partition's model function for one image: masks in, class probabilities out.

    Each distinct mask is painted and sent to the model once, however many rounds ask for it;
    `evaluations` counts the masks scored.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], masker: Any, image: np.ndarray) -> None:
        self._predict = predict
        self._masker = masker
        self._image = np.asarray(image)
        self._fill = masker.fill(self._image)
        self._memo = MemoForward(self._score_new)

    @property
    def evaluations(self) -> int:
        return self._memo.evaluations

    def _score_new(self, masks: np.ndarray) -> np.ndarray:
        return self._predict(self._masker.paint(masks, self._image, self._fill))

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        return self._memo(masks)


def warm_up_shap() -> float:
    """Pay shap's one-off numba compilation now (5-10 s on 2 cores) with a trivial Partition run.

    Runs a tiny image and a tiny text explanation with a fake model, so the first real
    explanation costs only its model calls. Returns the seconds spent. Safe to call from
    a background thread and more than once (later calls take milliseconds).
    """
    import shap

    started = time.perf_counter()

    # numba compiles per argument type: the fake models return float32 like LoadedModel.forward.
    def fake_image_model(x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1).mean(axis=1)
        return np.stack([flat, -flat], axis=1)

    warm_up_masker = shap.maskers.Image("blur(2,2)", (4, 4, 3))
    image = np.arange(48, dtype=np.float32).reshape(1, 4, 4, 3)
    with seeded_global_numpy(0):
        _partition_explainer(fake_image_model, warm_up_masker)(image, max_evals=20, batch_size=20, silent=True)

    def fake_text_model(texts: Any) -> np.ndarray:
        lengths = np.array([len(str(t)) for t in np.asarray(texts, dtype=object).ravel()], dtype=np.float32)
        return np.stack([lengths, -lengths], axis=1)

    text_masker = shap.maskers.Text(ModelTokenizer(), collapse_mask_token=True)
    with seeded_global_numpy(0):
        explainer = _partition_explainer(fake_text_model, text_masker)
        explainer(["warm up the text masker"], max_evals=20, batch_size=20, silent=True)
    return time.perf_counter() - started


BATCH_SIZE_HELP = "Inputs per model call; by default chosen for the model."


@dataclass(frozen=True)
class SHAPParams(MethodParams):
    """Partition SHAP's budget and, for images, what a hidden region becomes."""

    seeded = True

    max_evals: int = param(
        500, int, "Evaluations (max_evals)", minimum=1, maximum=1_000_000, offered=(50, 5000), step=50,
        help="How many masked copies of the input the model sees. More = finer map, slower.",
        summary="{value:,} evaluations",
    )
    masker: str = param(
        "blur", str, "Masker", choices=IMAGE_MASKER_LABELS, modalities=IMAGE_ONLY,
        help="What a hidden region becomes: a blurred copy of itself, or paint filled in from around it.",
        summary="{value} masker",
    )
    blur: int = param(
        8, int, "Blur kernel (pixels)", minimum=1, maximum=512, modalities=IMAGE_ONLY, when={"masker": "blur"},
        shown=False, help="The side of the box blur a hidden region gets.",
    )
    batch_size: int | None = param(
        None, int, "Batch size", minimum=1, maximum=100_000, optional=True, shown=False, help=BATCH_SIZE_HELP,
    )
    stopping: str = stopping_param("budget")



@register
class SHAPExplainer(Explainer):
    """Partition SHAP: images with a blur or inpainting masker, text with token removal."""

    name = "shap"
    title = "SHAP (Partition)"
    order = 20
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE, Modality.TEXT})
    Params = SHAPParams

    def __init__(
        self,
        model: Any,
        max_evals: int = 500,
        masker: str = "blur",
        blur: int = 8,
        batch_size: int | None = None,
        stopping: str = "stable",
    ) -> None:
        import shap

        super().__init__(model, max_evals=max_evals, masker=masker, blur=blur, batch_size=batch_size,
                         stopping=stopping)
        settings = self.settings
        self.max_evals = settings.max_evals
        self.adaptive = settings.stopping == "stable"
        self.batch_size = default_batch_size(model) if settings.batch_size is None else settings.batch_size
        # The batch size decides how Partition groups its evaluations, so the record keeps the one used.
        self.settings = replace(settings, batch_size=self.batch_size)
        self._predict = forward_fn(model, self.batch_size)
        if model.modality is Modality.TEXT:
            self.masker_name = "remove"
            self.mask_value = TEXT_MASK_TOKEN
            self._masker = shap.maskers.Text(ModelTokenizer(model.sequence_length), collapse_mask_token=True)
        else:
            self.masker_name = settings.masker
            size = settings.blur
            self.mask_value = f"blur({size},{size})" if settings.masker == "blur" else "inpaint_telea"
            height, width = model.image_size
            self._masker = image_masker(self.mask_value, (height, width, 3))

    def _partition(
        self, row: Any, target: int, seed: int, max_evals: int, explainer: Any
    ) -> tuple[np.ndarray, float, int]:
        """SHAP values of one input for one class, its base value, and Partition's count of model calls."""
        with seeded_global_numpy(seed):
            result = explainer(
                row, max_evals=max_evals, batch_size=self.batch_size, outputs=np.array([target]), silent=True,
            )
        values = np.asarray(result.values[0], dtype=np.float64)[..., 0]
        base = float(np.asarray(result.base_values[0]).ravel()[0])
        return values, base, int(getattr(explainer, "last_eval_count", 0)) + 2

    def _model_function(self, row: Any) -> MaskScorer | MemoForward:
        """The function Partition scores this input's masks with; its `evaluations` counts them.

        Images: a MaskScorer (masks in, each painted and scored once). Texts: the model on the
        masked strings, memoised, as strings are cheap to key.
        """
        if self.model.modality is Modality.IMAGE:
            return MaskScorer(self._predict, self._masker, row[0])
        return MemoForward(self._predict)

    def _values_for(
        self, row: Any, target: int, seed: int, to_map: Callable[[np.ndarray], np.ndarray],
        report: Callable[[int, np.ndarray, float, dict[str, Any]], None] | None,
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """The input's values, base value and rounds record: fixed budget, or rounds until stable.

        Every round is a Partition run at its budget over one memoised model function, so a
        round scores only the masks the earlier rounds did not (see explainers.rounds).
        """
        model_function = self._model_function(row)
        # Per input, so concurrent explanations never share a model function's state.
        explainer = _partition_explainer(model_function, self._masker)
        if not self.adaptive:
            values, base, counted = self._partition(row, target, seed, self.max_evals, explainer)
            used = model_function.evaluations if self.model.modality is Modality.IMAGE else counted
            return values, base, fixed_record(self.max_evals, used)

        def compute(budget: int) -> RoundResult:
            values, base, _ = self._partition(row, target, seed, budget, explainer)
            return RoundResult(comparable=to_map(values), payload=(values, base),
                               evaluations=model_function.evaluations)

        def notify(index: int, result: RoundResult, record: dict[str, Any]) -> None:
            if report is not None:
                report(index, *result.payload, record)

        # Images get a preview round (a coarser first map, drawn sooner); texts are cheap to score.
        preview = SHAP_PREVIEW_ROUND if self.model.modality is Modality.IMAGE else None
        budgets, previews = round_plan(SHAP_FIRST_ROUND, self.max_evals, preview)
        result, record = run_rounds(budgets, compute, notify, previews)
        values, base = result.payload
        return values, base, record

    def explain(
        self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0,
        on_round: OnRound | None = None,
    ) -> list[Explanation]:
        """One Partition run per input, for its target class (the predicted class when None).

        With stopping="stable" (the default) each input runs in rounds; `on_round(round_index,
        explanation)` receives the map after every round, its extras saying "refining" until
        the last (then "stable" or "budget"). Inputs are explained one after another.
        """
        if self.model.modality is Modality.TEXT:
            return self._explain_texts(inputs, targets, seed, on_round)
        return self._explain_images(inputs, targets, seed, on_round)

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

            def report(index: int, values: np.ndarray, base: float, record: dict[str, Any]) -> None:
                if on_round is not None:
                    on_round(index, self._explanation(
                        values.sum(axis=-1), target, base, seed, shared + time.perf_counter() - begun,
                        probability=float(probs[target]), record=record))

            values, base, record = self._values_for(
                image[None].astype(np.float32), target, seed, lambda v: v.sum(axis=-1), report
            )
            explanations.append(
                self._explanation(values.sum(axis=-1), target, base, seed, shared + time.perf_counter() - begun,
                                  probability=float(probs[target]), record=record)
            )
        return explanations

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
            tokens = tuple(token for _, _, token in model_token_spans(self.model, text))

            def report(index: int, values: np.ndarray, base: float, record: dict[str, Any]) -> None:
                if on_round is not None and len(values) == len(tokens):
                    on_round(index, self._explanation(
                        values, target, base, seed, shared + time.perf_counter() - begun,
                        probability=float(probs[target]), record=record, tokens=tokens))

            if len(tokens) < 2:
                # Partition needs two features to split; with one token its value is exact:
                # f(text) - f(nothing), and with none there is nothing to attribute.
                base = float(self._predict([""])[0, target])
                values = np.array([float(probs[target]) - base] * len(tokens))
                record = fixed_record(self.max_evals, 1)
            else:
                values, base, record = self._values_for([text], target, seed, lambda v: v, report)
            if len(values) != len(tokens):
                raise ValueError(f"SHAP returned {len(values)} values for {len(tokens)} tokens")
            explanations.append(
                self._explanation(values, target, base, seed, shared + time.perf_counter() - begun,
                                  probability=float(probs[target]), record=record, tokens=tokens)
            )
        return explanations

    def _explanation(
        self,
        values: np.ndarray,
        target: int,
        base: float,
        seed: int,
        seconds: float,
        *,
        probability: float,
        record: dict[str, Any],
        tokens: tuple[str, ...] | None = None,
    ) -> Explanation:
        return Explanation(
            method=self.name,
            modality=self.model.modality,
            target=target,
            target_label=class_label(self.model, target),
            values=values,
            model_name=self.model.name,
            model_version=self.model.version,
            seconds=seconds,
            params=self.params,
            seed=seed,
            tokens=tokens,
            base_value=base,
            extras={"probability": probability, "model_evaluations": record["evaluations_used"],
                    "masker": self.masker_name, "mask_value": self.mask_value, "algorithm": "partition", **record},
        )


def _blurred_backgrounds(image: np.ndarray) -> np.ndarray:
    """Reference images for expected gradients: the input box-blurred at 1/8, 1/4 and 1/2 of
    its size, plus its mean colour everywhere (4 x H x W x 3, float32, 0..255).

    Blurred copies keep the colours and coarse layout and remove the detail, the same
    reference the Partition explainer's blur masker uses, so both SHAP methods answer
    "which details matter" rather than "which differences from black matter".
    """
    import cv2

    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape[:2]
    backgrounds = []
    for fraction in (8, 4, 2):
        kernel = (max(1, width // fraction), max(1, height // fraction))
        backgrounds.append(cv2.blur(image, kernel))
    backgrounds.append(np.broadcast_to(image.mean(axis=(0, 1)), image.shape).astype(np.float32))
    return np.stack(backgrounds)


@dataclass(frozen=True)
class SHAPGradientParams(MethodParams):
    """Expected gradients' budget: samples along the paths from the blurred references."""

    seeded = True

    nsamples: int = param(
        200, int, "Samples (nsamples)", minimum=1, maximum=100_000, offered=(10, 2000), step=10,
        help="How many points between the references and the input the gradient is taken at.",
        summary="{value:,} samples",
    )
    batch_size: int = param(50, int, "Batch size", minimum=1, maximum=100_000, shown=False,
                            help="Inputs per gradient call.")


@register
class SHAPGradientExplainer(Explainer):
    """Expected gradients (shap.GradientExplainer) on the Keras model itself."""

    name = "shap-gradient"
    title = "SHAP (Gradient)"
    order = 21
    # The pages' SHAP is the model-agnostic Partition method (DESIGN.md: the robust default);
    # this one serves the command line, the API and the benchmarks.
    on_pages = False
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE})
    Params = SHAPGradientParams

    def __init__(self, model: Any, nsamples: int = 200, batch_size: int = 50) -> None:
        import shap

        super().__init__(model, nsamples=nsamples, batch_size=batch_size)
        self.nsamples = self.settings.nsamples
        self.batch_size = self.settings.batch_size
        height, width = model.image_size
        placeholder = np.zeros((1, height, width, model.io.channels), dtype=np.float32)
        # Given as (inputs, output) rather than as a model: shap reads a model's output shape from
        # its last *layer*, which for logit and one-unit heads is the raw Dense before the
        # softmax/sigmoid the workbench adds with ops, so a one-unit head had no class 1.
        probability_model = model.io.probability_model(model.keras_model)
        with model.lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._explainer = shap.GradientExplainer(
                (probability_model.inputs, probability_model.outputs[0]), placeholder, batch_size=self.batch_size)

    @classmethod
    def unavailable_reason(cls, model: Any) -> str | None:
        """Image models with a single float input (gradients flow from the pixels)."""
        reason = super().unavailable_reason(model)
        if reason is not None:
            return reason
        inputs = getattr(model.keras_model, "inputs", None) or []
        if len(inputs) == 1 and "float" in str(getattr(inputs[0], "dtype", "")):
            return None
        return f"{cls.title} needs a model with one float image input. Try SHAP (Partition) or LIME."

    def _expected_gradients(self, prepared: np.ndarray, background: np.ndarray, target: int, seed: int) -> np.ndarray:
        # The background is per input; the explainer (and its compiled gradient functions,
        # one per class) is reused across inputs, so only its data changes.
        with seeded_global_numpy(seed), self.model.lock, warnings.catch_warnings():
            self._explainer.explainer.data = [background]
            # Keras 3 warns that shap passes the single input as a one-element list.
            warnings.simplefilter("ignore")
            values, _ = self._explainer.shap_values(
                prepared,
                nsamples=self.nsamples,
                ranked_outputs=np.array([[target]]),
                output_rank_order="custom",
                rseed=int(seed) % 1_000_000,
            )
        return np.asarray(values, dtype=np.float64)[0, ..., 0]

    def explain(
        self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0
    ) -> list[Explanation]:
        """Per input: expected gradients against its blurred copies, summed over channels."""
        started = time.perf_counter()
        images = self.model.prepare_images(inputs)
        prepared = self.model.image_tensor(images)
        probabilities = batched_probabilities(self.model, prepared)
        chosen = choose_targets(targets, probabilities)
        shared = (time.perf_counter() - started) / max(len(images), 1)
        explanations = []
        for i, target in enumerate(chosen):
            begun = time.perf_counter()
            background = self.model.image_tensor(_blurred_backgrounds(images[i]))
            values = self._expected_gradients(prepared[i : i + 1], background, target, seed)
            base = float(batched_probabilities(self.model, background)[:, target].mean())
            explanations.append(
                Explanation(
                    method=self.name,
                    modality=self.model.modality,
                    target=target,
                    target_label=class_label(self.model, target),
                    values=values.sum(axis=-1),
                    model_name=self.model.name,
                    model_version=self.model.version,
                    seconds=shared + time.perf_counter() - begun,
                    params=self.params,
                    seed=seed,
                    base_value=base,
                    extras={"probability": float(probabilities[i, target]),
                            "background": "blur 1/8, 1/4, 1/2 and mean colour"},
                )
            )
        return explanations
