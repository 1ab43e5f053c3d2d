"""Model-randomisation sanity checks for every explanation method (Adebayo et al. 2018).

"Sanity Checks for Saliency Maps" asks one question of an explanation: does it change when
the model it claims to explain is destroyed? Two experiments answer it here, for any
registered method (Grad-CAM, SHAP, LIME ...) and both modalities:

Cascading randomisation
    From the top weighted layer (the Dense head) down, one layer at a time and cumulatively:
    step k re-explains with the top k weighted layers re-initialised (Glorot-uniform kernels,
    zero biases; `metrics._reinitialise`). Nested models (a backbone inside the model) are
    expanded, so every convolution of the backbone is a step of its own.
Independent randomisation
    Each of the same layers re-initialised alone, the rest of the model intact.

Every step uses the same method parameters, the same targets (the classes the intact model's
explanations were for) and the same seed, so the only thing that changes is the model. Each
randomised map is compared with the intact model's map for the same input by
    spearman      Spearman rank correlation of the signed maps,
    spearman_abs  Spearman rank correlation of the absolute maps (sign flips ignored),
    ssim          SSIM of the absolute maps scaled to [0, 1] (images only).

Verdict (documented rule; THRESHOLD is metrics.SANITY_THRESHOLD, 0.8, with its meaning kept:
"above it the map survived nearly intact")
    The statistic is s_k = the mean over inputs of spearman_abs at cascade step k: a map that
    merely flips sign still "looks the same" to it, so a method cannot pass by turning
    negative. The correlation itself is not taken in absolute value: a map whose ranking is
    reversed points at the other pixels (on a model with few channels a random head often
    picks the complementary channel: Spearman -0.9), and that is a changed explanation.
    - "depends on the model":            s_1 < THRESHOLD, i.e. the map already changes when only
                                         the top layer (the decision itself) is randomised;
    - "depends only on the lower layers": s_1 >= THRESHOLD but some later s_k < THRESHOLD: the
                                         map survives a random head and changes only once
                                         feature layers are randomised, so it shows what the
                                         features respond to more than what decided the class;
    - "does not depend on the model":    s_k >= THRESHOLD at every step measured: an edge
                                         detector would get this verdict (flagged).

Cost: one model clone per call (randomised in place step by step, and restored between the
independent steps); perturbation methods (SHAP, LIME) should be called with their cheaper
settings (stopping="stable"), and `max_layers` / `steps` bound the cascade on big models
(the steps measured are then spread evenly over the cascade, always with the first and last).
The clone keeps adapted vocabularies (TextVectorization) and never uses a converted LiteRT
copy of the original (its manifest drops the file's sha256), so every step scores the
weights it has.
"""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from explainers.metrics import (
    SANITY_THRESHOLD,
    _copy_vocabularies,
    _explainer_class,
    _reinitialise,
    _weighted_layers,
    rank_correlation,
    structural_similarity,
)
from foundation.types import Explanation, Modality

if TYPE_CHECKING:  # pragma: no cover
    from explainers.base import Explainer
    from models.loaded import LoadedModel

THRESHOLD = SANITY_THRESHOLD
# Steps measured along a long cascade by default (a keras.applications backbone has dozens of
# weighted layers; 8 evenly spread steps show the curve's shape at a bounded cost).
DEFAULT_MAX_STEPS = 8
DEPENDS = "depends on the model"
LOWER_ONLY = "depends only on the lower layers"
IGNORES = "does not depend on the model"
RULE = (f"mean Spearman rank correlation of the absolute maps after randomising the top layer below {THRESHOLD}: depends on the "
        f"model; above it there but below it at a deeper cascade step: depends only on the lower layers; at or above "
        f"{THRESHOLD} at every step: does not depend on the model")
SIMILARITIES = ("spearman", "spearman_abs", "ssim")


@dataclass(frozen=True)
class Steps:
    """Similarities of the randomised maps to the intact model's maps: one row per step, one column per input.

    layers[k]: the layer randomised at step k (the cascade has every layer above it randomised too).
    ssim is None for text.
    """

    layers: tuple[str, ...]
    spearman: np.ndarray
    spearman_abs: np.ndarray
    ssim: np.ndarray | None

    def __len__(self) -> int:
        return len(self.layers)

    def values(self, name: str) -> np.ndarray | None:
        if name not in SIMILARITIES:
            raise ValueError(f"unknown similarity {name!r}; choose one of {', '.join(SIMILARITIES)}")
        return getattr(self, name)

    def mean(self, name: str) -> np.ndarray | None:
        """Per step, the mean over inputs (None when the similarity does not apply)."""
        values = self.values(name)
        return None if values is None else values.mean(axis=1)

    def std(self, name: str) -> np.ndarray | None:
        values = self.values(name)
        return None if values is None else values.std(axis=1)

    @property
    def statistic(self) -> np.ndarray:
        """Per step, the verdict's statistic: mean over inputs of spearman_abs."""
        return self.spearman_abs.mean(axis=1)


@dataclass(frozen=True)
class SanityCascade:
    """The cascading (and optionally independent) randomisation check of one method on N inputs."""

    method: str
    cascade: Steps
    independent: Steps | None
    weighted_layers: tuple[str, ...]  # every weighted layer of the model, top first
    threshold: float
    seed: int
    n_inputs: int
    seconds: float
    explanations: int  # explanations computed (intact ones passed in not counted)
    original: tuple[Explanation, ...] = field(repr=False, default=())

    @property
    def layers(self) -> tuple[str, ...]:
        """The cascade's layers in order (top first); step k has layers[:k+1] randomised when every step is measured."""
        return self.cascade.layers

    @property
    def randomised_counts(self) -> tuple[int, ...]:
        """For each cascade step, how many weighted layers (from the top) were randomised."""
        return tuple(self.weighted_layers.index(layer) + 1 for layer in self.cascade.layers)

    @property
    def top_similarity(self) -> float:
        """The verdict statistic after randomising the top layer only (step 1)."""
        return float(self.cascade.statistic[0])

    @property
    def lowest_similarity(self) -> float:
        return float(self.cascade.statistic.min())

    @property
    def first_changed(self) -> str | None:
        """The first layer (from the top) whose randomisation, with those above, brings the map below threshold."""
        below = np.flatnonzero(self.cascade.statistic < self.threshold)
        return self.cascade.layers[int(below[0])] if below.size else None

    @property
    def verdict(self) -> str:
        if self.top_similarity < self.threshold:
            return DEPENDS
        if self.first_changed is not None:
            return LOWER_ONLY
        return IGNORES

    @property
    def flagged(self) -> bool:
        """True when the map stayed the same however much of the model was randomised."""
        return self.verdict == IGNORES

    @property
    def outcome(self) -> str:
        """"passes", "passes in part" or "fails"."""
        return {DEPENDS: "passes", LOWER_ONLY: "passes in part", IGNORES: "fails"}[self.verdict]

    def reason(self) -> str:
        """Why the verdict, in plain words."""
        top = self.cascade.layers[0]
        if self.verdict == DEPENDS:
            return (f"scrambling only the top layer ({top}) already changes the map (similarity "
                    f"{self.top_similarity:.2f}, below {self.threshold}), so it depends on what the model learned.")
        if self.verdict == LOWER_ONLY:
            return (f"the map survives a scrambled top layer ({top}; similarity {self.top_similarity:.2f}) and "
                    f"changes only once {self.first_changed} is scrambled too, so it shows what the lower layers "
                    "respond to more than what decided the class.")
        return (f"the map stays nearly the same (similarity at least {self.lowest_similarity:.2f}) even with "
                f"{self.randomised_counts[-1]} of the model's {len(self.weighted_layers)} weighted layers scrambled, "
                "so it may describe the input rather than the model.")

    def sentence(self) -> str:
        """The verdict in one plain sentence (for the trust panel and reports): "Passes: ..."."""
        return f"{self.outcome.capitalize()}: {self.reason()}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: per step the layer(s) randomised and mean/std of each similarity."""
        def rows(steps: Steps, cumulative: bool) -> list[dict[str, Any]]:
            out = []
            for k, layer in enumerate(steps.layers):
                row: dict[str, Any] = {"layer": layer}
                if cumulative:
                    count = self.randomised_counts[k]
                    row["layers_randomised"] = list(self.weighted_layers[:count])
                for name in SIMILARITIES:
                    mean, std = steps.mean(name), steps.std(name)
                    row[name] = None if mean is None else {"mean": _round(mean[k]), "std": _round(std[k])}
                row["statistic"] = _round(steps.statistic[k])
                out.append(row)
            return out

        return {
            "method": self.method,
            "n": self.n_inputs,
            "seed": self.seed,
            "threshold": self.threshold,
            "rule": RULE,
            "weighted_layers": list(self.weighted_layers),
            "cascade": rows(self.cascade, True),
            "independent": None if self.independent is None else rows(self.independent, False),
            "top_similarity": _round(self.top_similarity),
            "lowest_similarity": _round(self.lowest_similarity),
            "first_changed": self.first_changed,
            "verdict": self.verdict,
            "flagged": self.flagged,
            "explanations": self.explanations,
            "seconds": round(self.seconds, 2),
        }


def _round(value: float) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 4)


# --- the randomisable clone ---------------------------------------------------------------------


class _Clone:
    """One copy of a model whose weights the check overwrites; reset to the original before each use."""

    def __init__(self, model: "LoadedModel") -> None:
        import keras

        from models.loaded import LoadedModel

        with model.lock:
            clone = keras.models.clone_model(model.keras_model)
            clone.set_weights(model.keras_model.get_weights())
            _copy_vocabularies(model.keras_model, clone)
        manifest = model.info.to_dict()
        # A manifest with the file's sha256 would let the perturbation scorer use the original's
        # converted LiteRT copy (keyed on that digest): the randomised weights would never be scored.
        manifest.pop("sha256", None)
        self.model = LoadedModel(name=model.name, version=f"{model.version}+randomised", manifest=manifest,
                                 keras_model=clone)
        self.lock = threading.Lock()

    def reset(self, source: "LoadedModel") -> None:
        with source.lock:
            weights = source.keras_model.get_weights()
        self.model.keras_model.set_weights(weights)


# Per original model (weakly held), one clone: the panel checks input after input on the same
# model, and a Grad-CAM pass traced on the clone is then reused rather than traced again.
_CLONES: "weakref.WeakKeyDictionary[Any, _Clone]" = weakref.WeakKeyDictionary()
_CLONES_LOCK = threading.Lock()


def _clone_for(model: "LoadedModel") -> _Clone:
    with _CLONES_LOCK:
        found = _CLONES.get(model)
        if found is None:
            found = _CLONES[model] = _Clone(model)
    return found


# --- layers and steps -------------------------------------------------------------------------


def weighted_layers_top_down(model: "LoadedModel") -> list[tuple[str, Any]]:
    """(path, layer) of every weighted layer, nested models expanded, the top (output) layer first."""
    return list(reversed(_weighted_layers(model.keras_model)))


def step_indices(count: int, steps: int | None) -> list[int]:
    """Which of `count` cascade positions to measure: all when steps is None or >= count, else
    `steps` positions spread evenly, always the first (top layer) and the last."""
    if count < 1:
        raise ValueError("the model has no weighted layer to randomise")
    if steps is None or steps >= count:
        return list(range(count))
    if steps < 1:
        raise ValueError(f"measure at least one step, got {steps}")
    if steps == 1:
        return [0]
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, steps)})


def _similarities(original: Sequence[Explanation], randomised: Sequence[Explanation], image: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    a = [np.asarray(e.values, dtype=np.float64) for e in original]
    b = [np.asarray(e.values, dtype=np.float64) for e in randomised]
    signed = np.array([rank_correlation(x.ravel(), y.ravel()) for x, y in zip(a, b)])
    absolute = np.array([rank_correlation(np.abs(x).ravel(), np.abs(y).ravel()) for x, y in zip(a, b)])
    ssim = np.array([structural_similarity(np.abs(x), np.abs(y)) for x, y in zip(a, b)]) if image else None
    return signed, absolute, ssim


def _stack(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], layers: list[str]) -> Steps:
    return Steps(
        layers=tuple(layers),
        spearman=np.stack([r[0] for r in rows]),
        spearman_abs=np.stack([r[1] for r in rows]),
        ssim=None if rows[0][2] is None else np.stack([r[2] for r in rows]),
    )


def layer_seed(seed: int, position: int) -> int:
    """The re-initialisation seed of the layer `position` places below the top (same in both experiments)."""
    return int(seed) * 1000 + position * 10


def sanity_cascade(
    model: "LoadedModel",
    method: "str | type[Explainer]",
    inputs: Sequence[Any],
    targets: Sequence[int] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    original: Sequence[Explanation] | None = None,
    seed: int = 0,
    max_layers: int | None = None,
    steps: int | None = DEFAULT_MAX_STEPS,
    independent: bool = True,
    threshold: float = THRESHOLD,
) -> SanityCascade:
    """Cascading (and independent) model-parameter randomisation of one method on `inputs`.

    method: a registered name or an Explainer class; params: its constructor parameters, the
    same for the intact model and every step (pass the cheaper settings for SHAP/LIME:
    stopping="stable"). original: the intact model's explanations, made with those params
    (computed when None); targets default to theirs. max_layers: how deep the cascade goes
    (default: every weighted layer); steps: how many of those cascade positions to measure
    (evenly spread, first and last included; None = all). The original model is untouched.
    """
    started = time.perf_counter()
    cls = _explainer_class(method)
    params = dict(params or {})
    inputs = list(inputs)
    computed = 0
    if original is None:
        original = cls(model, **params).explain(inputs, targets, seed=seed)
        computed += len(inputs)
    original = list(original)
    if len(original) != len(inputs):
        raise ValueError(f"got {len(original)} explanations for {len(inputs)} inputs")
    targets = [int(e.target) for e in original] if targets is None else [int(t) for t in targets]
    layers = weighted_layers_top_down(model)
    depth = len(layers) if max_layers is None else max(1, min(int(max_layers), len(layers)))
    measured = step_indices(depth, steps)
    image = model.modality is Modality.IMAGE

    clone = _clone_for(model)
    with clone.lock:
        clone.reset(model)
        by_path = dict(_weighted_layers(clone.model.keras_model))
        copies = [(path, by_path[path]) for path, _ in layers]

        def explain_now() -> list[Explanation]:
            return cls(clone.model, **params).explain(inputs, targets, seed=seed)

        independent_rows = []
        if independent:
            for position in measured:
                path, layer = copies[position]
                kept = layer.get_weights()
                _reinitialise(layer, layer_seed(seed, position))
                independent_rows.append(_similarities(original, explain_now(), image))
                computed += len(inputs)
                layer.set_weights(kept)
        cascade_rows = []
        done = 0
        for position in measured:
            while done <= position:  # randomise every layer down to this one, in place
                _reinitialise(copies[done][1], layer_seed(seed, done))
                done += 1
            cascade_rows.append(_similarities(original, explain_now(), image))
            computed += len(inputs)
        clone.reset(model)  # leave the shared clone as the original for whoever comes next

    names = [layers[p][0] for p in measured]
    return SanityCascade(
        method=cls.name,
        cascade=_stack(cascade_rows, names),
        independent=_stack(independent_rows, names) if independent else None,
        weighted_layers=tuple(path for path, _ in layers),
        threshold=float(threshold),
        seed=int(seed),
        n_inputs=len(inputs),
        seconds=time.perf_counter() - started,
        explanations=computed,
        original=tuple(original),
    )


def cheap_params(method: "str | type[Explainer]", params: Mapping[str, Any]) -> dict[str, Any]:
    """The method's parameters with the cheaper stopping rule for methods that run in rounds."""
    cls = _explainer_class(method)
    specs = cls.Params.specs() if getattr(cls, "Params", None) is not None else {}
    out = dict(params)
    if "stopping" in specs:
        out["stopping"] = "stable"
    return out


def estimate_seconds(explanation: Explanation, model: "LoadedModel", *, max_layers: int | None = None,
                     steps: int | None = DEFAULT_MAX_STEPS, independent: bool = True) -> float:
    """About how long the check takes for one input: one explanation per step (twice with
    the independent experiment), each as long as `explanation` took."""
    count = len(_weighted_layers(model.keras_model))
    depth = count if max_layers is None else max(1, min(int(max_layers), count))
    measured = len(step_indices(depth, steps))
    return float(explanation.seconds) * measured * (2 if independent else 1)
