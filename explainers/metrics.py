"""How far to trust an explanation: faithfulness, localisation, sanity and agreement.

Pure and batched: numpy in, numpy or small dataclasses out; no streamlit.

Faithfulness (deletion / insertion, after Petsiuk et al. 2018, "RISE")
    Order the input's pixels (or tokens) from most to least important by the
    explanation. *Deletion* replaces them, in that order, by a baseline (images: a blurred
    copy of the image, its mean colour, uniform noise or black; text: the token is removed
    or replaced by a mask token the model reads as unknown) and records the model's probability for
    the explained class after each step; *insertion* starts from the baseline and puts
    them back. A faithful explanation makes the deletion curve fall fast (small area)
    and the insertion curve rise fast (large area). The same curves with a seeded random
    order, against the same baseline, are the reference: an explanation is only informative
    where it beats them. Blur and removal are close to what the SHAP and LIME maskers do, so
    a comparison of methods should be read under the other baselines too.
    Ties in the attribution are broken at random, so a constant map is exactly a random
    order (it carries no ranking information).

Localisation (data with ground truth)
    mask_mass: share of the positive attribution inside the object mask, to compare
    with the mask's share of the image (what a uniform map would give).
    pointing_game (Zhang et al. 2016): does the map's maximum fall on the object?
    rationale_overlap: share of the top tokens that are rationale words.

Sanity (model-parameter randomisation, Adebayo et al. 2018)
    explainers.sanity: cascading and independent randomisation of a copy of the model's
    weighted layers (the helpers that find and re-initialise them are here). A map that
    stays nearly the same (similarity above SANITY_THRESHOLD) does not depend on the model.

Agreement
    Rank correlation and top-k overlap between two methods' maps for the same input.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from foundation.types import Explanation, Modality

if TYPE_CHECKING:  # pragma: no cover
    from explainers.base import Explainer
    from models.loaded import LoadedModel

DEFAULT_STEPS = 20
# What a removed pixel or token becomes, per modality, the default first (for a selectbox).
# Blur and token removal are also what the SHAP maskers do (box blur; a "..." mask the model's
# standardisation deletes) and close to LIME's (a hidden superpixel takes its mean colour; a
# hidden token is dropped), so scoring every method under the other baselines too keeps the
# comparison from favouring the perturbation methods.
IMAGE_BASELINES = ("blur", "mean", "noise", "black")
TEXT_BASELINES = ("remove", "mask")
BASELINES: dict[Modality, tuple[str, ...]] = {Modality.IMAGE: IMAGE_BASELINES, Modality.TEXT: TEXT_BASELINES}
# Human-readable, to complete "removed pixels/words become ...".
BASELINE_LABELS = {
    "blur": "a blurred copy",
    "mean": "the mean colour",
    "noise": "uniform noise",
    "black": "black",
    "remove": "nothing (the words are dropped)",
    "mask": "a mask token",  # completed with the token itself, e.g. "a mask token [UNK]"
}
# The word written in place of a hidden token, in order of preference: the first one the model
# reads as a single out-of-vocabulary token ("[UNK]" standardises to "unk", which a vocabulary
# seldom holds; the others are fallbacks for one that does).
MASK_TOKEN_CANDIDATES = ("[UNK]", "[MASK]", "<unk>", "xxunk", "unkxxmask")
# Gaussian blur sigma as a fraction of the image's longer side: strong enough to wipe out
# edges and small marks (a 64 px image gets sigma 4), weak enough to keep colours in place,
# so the baseline stays a natural-looking image rather than an out-of-distribution black.
BLUR_SIGMA_FRACTION = 1.0 / 16.0
# Pointing-game tolerance: Zhang et al. count a hit within 15 px of the object on 224 px
# images; we scale that distance to the map's size (4 px at 64 px).
POINTING_TOLERANCE_FRACTION = 15.0 / 224.0
# Sanity check: the explanation of a model with randomised layers is "the same" when its
# rank correlation with the original is above this. 0.8 means the ordering of the map
# survived nearly intact after the weights it should depend on were replaced by noise.
SANITY_THRESHOLD = 0.8
# Verdict. The best any ordering could reach is the curve's extreme (deletion: its lowest
# score from the start; insertion: its highest), so the gap between the random order's area
# and that extreme is all an explanation can win. A test is won when the explanation closes
# at least WIN_SHARE of the gap, and says nothing when the gap is under MIN_GAP (every order
# gives about the same curve, e.g. near-certain predictions that survive any insertion).
WIN_SHARE = 0.25
MIN_GAP = 0.02
# Perturbed inputs per forward call (64x64 float images: ~50 MB).
FORWARD_BATCH = 1000
GRADIENT_METHODS = frozenset({"gradcam", "gradcam++"})


# --- agreement (imported by the compare view; keep the signature stable) ---------------------


def agreement(values_a: np.ndarray, values_b: np.ndarray, top_fraction: float = 0.1) -> dict[str, float]:
    """How much two attributions for the same input agree.

    rank_correlation: Spearman correlation of the flattened values (1 = same ordering,
    0 = unrelated, -1 = reversed; 0.0 when one of them is constant and the other is not,
    1.0 when both are constant).
    top_overlap: intersection over union of the top `top_fraction` positions of each
    (at least one position each; ties broken by position).
    """
    a = np.asarray(values_a, dtype=np.float64).ravel()
    b = np.asarray(values_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"attributions must have the same shape to be compared, got {np.shape(values_a)} and {np.shape(values_b)}")
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    if a.size == 0:
        return {"rank_correlation": float("nan"), "top_overlap": float("nan")}
    k = max(1, int(round(top_fraction * a.size)))
    top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return {
        "rank_correlation": float(rank_correlation(a, b)),
        "top_overlap": len(top_a & top_b) / len(top_a | top_b),
    }


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Spearman correlation between a and b along the last axis (batched over the rest).

    Average ranks for ties. A constant row has no ordering: it scores 1.0 against another
    constant row and 0.0 against anything else (rather than NaN), so "the explanation
    vanished" counts as "changed".
    """
    from scipy.stats import rankdata

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    ra = rankdata(a, axis=-1)
    rb = rankdata(b, axis=-1)
    ra -= ra.mean(axis=-1, keepdims=True)
    rb -= rb.mean(axis=-1, keepdims=True)
    norm_a = np.sqrt((ra**2).sum(axis=-1))
    norm_b = np.sqrt((rb**2).sum(axis=-1))
    denominator = norm_a * norm_b
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denominator > 0, (ra * rb).sum(axis=-1) / np.where(denominator > 0, denominator, 1.0), 0.0)
    both_constant = (norm_a == 0) & (norm_b == 0)
    rho = np.where(both_constant, 1.0, np.clip(rho, -1.0, 1.0))
    return float(rho) if np.ndim(rho) == 0 else rho


def structural_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two maps after scaling each to [0, 1] (min-max; a constant map becomes 0)."""
    from skimage.metrics import structural_similarity as ssim

    a, b = _unit_range(a), _unit_range(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"SSIM needs two 2-D maps of one shape, got {a.shape} and {b.shape}")
    window = min(7, *a.shape)
    window -= 1 - window % 2  # skimage needs an odd window
    if window < 3:
        return float(1.0 - np.abs(a - b).mean())
    return float(ssim(a, b, data_range=1.0, win_size=window))


def _unit_range(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


# --- localisation ------------------------------------------------------------------------------


def _resize_to(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An H x W map (or N x H x W batch) resized bilinearly to the mask's H x W."""
    import cv2

    values = np.asarray(values, dtype=np.float32)
    target = tuple(shape[-2:])
    if values.shape[-2:] == target:
        return values
    height, width = target
    if values.ndim == 2:
        return cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.stack([cv2.resize(v, (width, height), interpolation=cv2.INTER_LINEAR) for v in values])


def _scalar_or_array(result: np.ndarray) -> np.ndarray | float:
    return float(result) if np.ndim(result) == 0 else result


def area_share(mask: np.ndarray) -> np.ndarray | float:
    """Share of the image a mask covers (per mask for an N x H x W batch): the chance level."""
    mask = np.asarray(mask, dtype=bool)
    return _scalar_or_array(mask.mean(axis=(-2, -1)))


def mask_mass(values: np.ndarray, mask: np.ndarray) -> np.ndarray | float:
    """Share of the positive attribution that falls inside `mask` (H x W, or batched N x H x W).

    Negative values (evidence against the class) are not mass. A map with no positive
    value has no mass to place: NaN. A uniform map scores `area_share(mask)`.
    """
    mask = np.asarray(mask, dtype=bool)
    positive = np.maximum(_resize_to(values, mask.shape), 0.0).astype(np.float64)
    if positive.shape != mask.shape:
        raise ValueError(f"map {positive.shape} and mask {mask.shape} do not match")
    total = positive.sum(axis=(-2, -1))
    inside = (positive * mask).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
    return _scalar_or_array(share)


def cue_mass(values: np.ndarray, cue_mask: np.ndarray) -> np.ndarray | float:
    """Share of the positive attribution on a planted cue; compare with `area_share(cue_mask)`."""
    return mask_mass(values, cue_mask)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    if radius <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def default_pointing_tolerance(shape: tuple[int, ...]) -> int:
    return int(round(POINTING_TOLERANCE_FRACTION * max(shape[-2:])))


def pointing_game(values: np.ndarray, mask: np.ndarray, tolerance: int | None = None) -> np.ndarray | float:
    """1.0 when the map's maximum lies on the object (within `tolerance` pixels), else 0.0.

    tolerance None = Zhang et al.'s 15 px at 224 px, scaled to the mask's size; 0 = strict.
    When several positions share the maximum, the score is the share of them that hit: the
    expected outcome of picking one at random. So a constant map scores the (dilated) mask's
    area share, the chance level, rather than whatever position happens to come first.
    """
    mask = np.asarray(mask, dtype=bool)
    maps = _resize_to(values, mask.shape).astype(np.float64)
    single = maps.ndim == 2
    maps, masks = (maps[None], mask[None]) if single else (maps, mask)
    radius = default_pointing_tolerance(mask.shape) if tolerance is None else int(tolerance)
    scores = np.empty(len(maps))
    for i, (m, target_mask) in enumerate(zip(maps, masks)):
        peak = m.max()
        at_peak = m >= peak - 1e-9 * max(1.0, abs(peak))
        scores[i] = (at_peak & _dilate(target_mask, radius)).sum() / at_peak.sum()
    return float(scores[0]) if single else scores


def rationale_overlap(
    tokens: Sequence[str], values: Sequence[float], rationale: Sequence[str], k: int | None = None
) -> float:
    """Share of the k highest-valued tokens that are rationale words (precision at k).

    k defaults to the number of tokens in the text that are rationale words, so the score
    is also the share of the rationale found. Ties are broken by position. NaN when the
    text has no rationale word or no tokens.
    """
    tokens = list(tokens)
    values = np.asarray(values, dtype=np.float64)
    if len(tokens) != len(values):
        raise ValueError(f"got {len(values)} values for {len(tokens)} tokens")
    wanted = set(rationale)
    is_rationale = np.array([token in wanted for token in tokens], dtype=bool)
    if k is None:
        k = int(is_rationale.sum())
    if k <= 0 or not tokens:
        return float("nan")
    k = min(int(k), len(tokens))
    top = np.argsort(-values, kind="stable")[:k]
    return float(is_rationale[top].mean())


def rationale_chance(tokens: Sequence[str], rationale: Sequence[str]) -> float:
    """Expected rationale_overlap of a random ranking: the share of tokens that are rationale words."""
    tokens = list(tokens)
    if not tokens:
        return float("nan")
    wanted = set(rationale)
    return sum(token in wanted for token in tokens) / len(tokens)


# --- deletion and insertion --------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves for N explained inputs, and the same with random order.

    Curves are N x S, sampled at `fractions` (0 = nothing removed / inserted, 1 = all).
    Areas are per input; with random_repeats > 1 the random curves and areas are means (NaN
    with random_repeats = 0). Method and random order are scored against the same baseline.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray
    random_deletion_auc: np.ndarray
    random_insertion_auc: np.ndarray
    targets: np.ndarray
    baseline: str  # human-readable: "blur", "uniform noise", "a mask token [UNK]" (describe_baseline)
    baseline_name: str = ""  # the name it was asked for: one of BASELINES[modality]

    def __len__(self) -> int:
        return len(self.targets)

    def summary(self) -> dict[str, float]:
        """Mean areas over the inputs."""
        return {
            name: float(np.mean(getattr(self, name)))
            for name in ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc")
        }


def curve_area(fractions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Trapezoid area under score(fraction), along the last axis."""
    scores = np.asarray(scores, dtype=np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    return (np.diff(fractions) * (scores[..., 1:] + scores[..., :-1]) / 2.0).sum(axis=-1)


def fraction_grid(steps: int) -> np.ndarray:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return np.linspace(0.0, 1.0, int(steps) + 1)


def attribution_order(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions from most to least important; equal values come in random order."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = np.nan_to_num(flat, nan=-np.inf)
    # lexsort sorts by the last key first: value (descending), then a random tie-breaker.
    return np.lexsort((rng.random(flat.size), -flat))


def blur_baseline(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image, dtype=np.float32)
    sigma = max(image.shape[:2]) * BLUR_SIGMA_FRACTION
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def noise_baseline(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """Uniform noise in the pixel range: whole values 0..255 per pixel and channel, as float32.

    Seeded by `seed` and the image's own pixels, so one image gets the same noise wherever it
    is scored (alone in the trust panel or anywhere in a batch), and every method explaining
    it is scored against the same noise.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    rng = np.random.default_rng([int(seed), zlib.crc32(image.tobytes()), len(image.shape)])
    return rng.integers(0, 256, size=image.shape).astype(np.float32)


def image_baseline(image: np.ndarray, baseline: str, seed: int = 0) -> np.ndarray:
    """What a removed pixel becomes: the blurred image, the image's mean colour, uniform noise
    (seeded by `seed` and the image) or black. Values stay in the model's 0..255 pixel range."""
    image = np.asarray(image, dtype=np.float32)
    if baseline == "blur":
        return blur_baseline(image)
    if baseline == "black":
        return np.zeros_like(image)
    if baseline == "mean":
        return np.broadcast_to(image.mean(axis=(0, 1)), image.shape).astype(np.float32)
    if baseline == "noise":
        return noise_baseline(image, seed)
    raise ValueError(_unknown_baseline(baseline, Modality.IMAGE))


def _unknown_baseline(baseline: Any, modality: Modality) -> str:
    valid = "; ".join(f"{m.value}: {', '.join(names)}" for m, names in BASELINES.items())
    return (f"unknown baseline {baseline!r} for {modality.value} inputs; choose one of "
            f"{', '.join(BASELINES[modality])} (valid baselines per modality: {valid})")


def check_baseline(modality: Modality, baseline: str | None) -> str:
    """The baseline's name (None = the modality's default, the first in BASELINES); a ValueError
    naming the valid ones for each modality otherwise."""
    modality = Modality(modality)
    if baseline is None:
        return BASELINES[modality][0]
    if baseline not in BASELINES[modality]:
        raise ValueError(_unknown_baseline(baseline, modality))
    return baseline


def _vocabulary(model: "LoadedModel") -> tuple[list[str] | None, int | None]:
    """(the words the text model knows, the id it gives unknown words) or (None, None) when it
    cannot be read. Token-id models record both in the manifest; string-input models hold them
    in a lookup layer (TextVectorization, StringLookup)."""
    from models.model_io import find_oov_id

    if model.io.token_ids:
        return list(model.io.vocabulary or ()), model.io.oov_id
    for layer in _all_layers(model.keras_model):
        if hasattr(layer, "get_vocabulary"):
            vocabulary = [str(v) for v in layer.get_vocabulary()]
            return vocabulary, find_oov_id(vocabulary)
    return None, None


def text_mask_token(model: "LoadedModel") -> str:
    """The word written in place of a hidden token under the "mask" baseline.

    The first of MASK_TOKEN_CANDIDATES that the model reads as one token it does not know, so
    a masked position keeps its place (the text keeps its length) but carries the
    out-of-vocabulary id (for string-input models, TextVectorization's "[UNK]"; for token-id
    models, the manifest's oov_id). When the vocabulary cannot be read, "[UNK]". A ValueError
    when no candidate works, e.g. a token-id model without an out-of-vocabulary id (an unknown
    word is dropped there, which is the "remove" baseline).
    """
    vocabulary, oov_id = _vocabulary(model)
    if vocabulary is None:
        return MASK_TOKEN_CANDIDATES[0]
    if model.io.token_ids and oov_id is None:
        raise ValueError(f"model {model.name!r} has no out-of-vocabulary id, so a mask token would be dropped "
                         "like a removed word; use the 'remove' baseline")
    first_id: dict[str, int] = {}
    for index, word in enumerate(vocabulary):
        first_id.setdefault(word, index)
    for candidate in MASK_TOKEN_CANDIDATES:
        read = model.tokenize(candidate)
        if len(read) == 1 and first_id.get(read[0], oov_id) == oov_id:
            return candidate
    raise ValueError(f"model {model.name!r} knows every mask token tried ({', '.join(MASK_TOKEN_CANDIDATES)}); "
                     "use the 'remove' baseline")


def describe_baseline(baseline: str, mask_token: str | None = None) -> str:
    """Human-readable: "uniform noise", "the mean colour", "a mask token [UNK]" ..."""
    label = BASELINE_LABELS[baseline]
    return f"{label} {mask_token}" if baseline == "mask" and mask_token else label


def _step_masks(order: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """S x P booleans: row s marks the first counts[s] positions of `order`."""
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size)
    return ranks[None, :] < counts[:, None]


def _image_variants(image: np.ndarray, base: np.ndarray, order: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(deletion, insertion) variants, each S x H x W x 3 float32."""
    height, width = image.shape[:2]
    chosen = _step_masks(order, counts).reshape(len(counts), height, width, 1)
    deletion = np.where(chosen, base[None], image[None])
    insertion = np.where(chosen, image[None], base[None])
    return deletion.astype(np.float32), insertion.astype(np.float32)


def _explanation_values(explanations: Sequence[Any], targets: Sequence[int] | None) -> tuple[list[np.ndarray], list[int]]:
    values = [np.asarray(e.values if isinstance(e, Explanation) else e, dtype=np.float64) for e in explanations]
    if targets is None:
        if not all(isinstance(e, Explanation) for e in explanations):
            raise ValueError("give `targets` when passing attribution arrays instead of Explanations")
        targets = [e.target for e in explanations]
    targets = [int(t) for t in targets]
    if len(targets) != len(values):
        raise ValueError(f"got {len(targets)} targets for {len(values)} explanations")
    return values, targets


def deletion_insertion(
    model: "LoadedModel",
    inputs: Sequence[Any],
    explanations: Sequence[Explanation | np.ndarray],
    *,
    targets: Sequence[int] | None = None,
    steps: int = DEFAULT_STEPS,
    baseline: str | None = None,
    seed: int = 0,
    random_repeats: int = 1,
) -> Curves:
    """Deletion and insertion curves, with their random-order reference, for a batch.

    inputs: images (H x W x 3, resized to the model's size if needed) or texts.
    explanations: Explanation objects or bare attribution arrays (then pass `targets`).
    baseline: what a removed pixel or token becomes, one of BASELINES[model.modality]
    (None = the first: "blur" for images, "remove" for text); a ValueError names the valid
    ones. Images ("blur", "mean", "noise", "black"): `steps` + 1 points; each step removes
    (deletion) or reveals (insertion) an equal share of the pixels against the baseline
    image. Text: every k = 0..n tokens is a point; "remove" drops the removed tokens (the
    kept ones are joined with spaces in their original order), "mask" writes
    `text_mask_token(model)` in their place, which the model reads as its out-of-vocabulary
    token, so the text keeps its length (insertion starts from all masks). The text curves
    are resampled on the `steps` grid for display, while the areas use every point.
    The random-order reference uses the same baseline. random_repeats = 0 skips it (NaN), for
    callers that score several methods on the same inputs and targets, whose reference is the
    same for all. All perturbed inputs go through the model in large batches (one call per
    ~1000 variants). Deterministic for a given seed.
    """
    if len(inputs) != len(explanations):
        raise ValueError(f"got {len(explanations)} explanations for {len(inputs)} inputs")
    if random_repeats < 0:
        raise ValueError(f"random_repeats must be 0 or more, got {random_repeats}")
    name = check_baseline(model.modality, baseline)
    values, chosen = _explanation_values(explanations, targets)
    fractions = fraction_grid(steps)
    if model.modality is Modality.TEXT:
        mask = text_mask_token(model) if name == "mask" else None
        rows = _text_curves(model, [str(t) for t in inputs], values, chosen, fractions, seed, random_repeats, mask)
        description = describe_baseline(name, mask)
    else:
        rows = _image_curves(model, inputs, values, chosen, fractions, name, seed, random_repeats)
        description = describe_baseline(name)
    deletion, insertion, random_deletion, random_insertion, areas = rows
    empty = np.zeros((0, len(fractions)))
    return Curves(
        fractions=fractions,
        deletion=np.asarray(deletion) if len(deletion) else empty,
        insertion=np.asarray(insertion) if len(insertion) else empty,
        random_deletion=np.asarray(random_deletion) if len(random_deletion) else empty,
        random_insertion=np.asarray(random_insertion) if len(random_insertion) else empty,
        deletion_auc=np.asarray([a[0] for a in areas], dtype=np.float64),
        insertion_auc=np.asarray([a[1] for a in areas], dtype=np.float64),
        random_deletion_auc=np.asarray([a[2] for a in areas], dtype=np.float64),
        random_insertion_auc=np.asarray([a[3] for a in areas], dtype=np.float64),
        targets=np.asarray(chosen, dtype=np.int64),
        baseline=description,
        baseline_name=name,
    )


def _rngs(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams per input: (tie-breaking of the attribution order, random orders)."""
    return np.random.default_rng([seed, index, 0]), np.random.default_rng([seed, index, 1])


def _image_curves(model, inputs, values, targets, fractions, baseline, seed, repeats):
    from explainers.perturb import batched_probabilities

    images = model.prepare_images(inputs).astype(np.float32)
    height, width = model.image_size
    n_pixels = height * width
    counts = np.rint(fractions * n_pixels).astype(np.int64)
    per_input = 2 * (1 + repeats) * len(fractions)
    group = max(1, FORWARD_BATCH // per_input)
    out: tuple[list, list, list, list, list] = ([], [], [], [], [])
    for start in range(0, len(images), group):
        variants = []
        for i in range(start, min(start + group, len(images))):
            tie_rng, random_rng = _rngs(seed, i)
            # One baseline image per input, shared by the explanation's order and the random ones.
            base = image_baseline(images[i], baseline, seed)
            attribution = _resize_to(values[i], (height, width))
            orders = [attribution_order(attribution, tie_rng)]
            orders += [random_rng.permutation(n_pixels) for _ in range(repeats)]
            for order in orders:
                variants.extend(_image_variants(images[i], base, order, counts))
        scores = batched_probabilities(model, model.image_tensor(np.concatenate(variants)), FORWARD_BATCH)
        scores = scores.reshape(-1, 1 + repeats, 2, len(fractions), scores.shape[-1])
        for offset, row in enumerate(scores):
            target = targets[start + offset]
            curves = row[..., target]  # (1 + repeats) x 2 x S
            _collect(out, curves[0, 0], curves[0, 1], curves[1:, 0], curves[1:, 1], fractions, fractions)
    return out


def _collect(out, deletion, insertion, random_deletion, random_insertion, points, fractions) -> None:
    """Append one input's curves (resampled onto `fractions`) and areas (over `points`).

    random_deletion / random_insertion are R x P; with R = 0 (no reference asked for) the
    random curves and areas are NaN."""
    if len(random_deletion) == 0:
        random_deletion = random_insertion = np.full((1, len(points)), np.nan)
    areas = (
        float(curve_area(points, deletion)),
        float(curve_area(points, insertion)),
        float(np.mean(curve_area(points, random_deletion))),
        float(np.mean(curve_area(points, random_insertion))),
    )
    resample = (lambda c: c) if len(points) == len(fractions) else (lambda c: np.interp(fractions, points, c))
    out[0].append(resample(deletion))
    out[1].append(resample(insertion))
    out[2].append(resample(np.mean(random_deletion, axis=0)))
    out[3].append(resample(np.mean(random_insertion, axis=0)))
    out[4].append(areas)


def _text_variants(tokens: Sequence[str], order: np.ndarray, mask: str | None = None) -> tuple[list[str], list[str]]:
    """Deletion and insertion texts for k = 0..n tokens taken in `order`.

    mask None: taken tokens vanish (deletion) or are the only ones left (insertion).
    mask "[UNK]": they are replaced by it, so every text has n tokens and the others keep
    their positions (insertion starts from n masks)."""
    n = len(tokens)
    counts = np.arange(n + 1)
    chosen = _step_masks(order, counts)
    words = np.asarray(tokens, dtype=object)
    if mask is None:
        deletion = [" ".join(words[~row]) for row in chosen]
        insertion = [" ".join(words[row]) for row in chosen]
        return deletion, insertion
    deletion = [" ".join(np.where(row, mask, words)) for row in chosen]
    insertion = [" ".join(np.where(row, words, mask)) for row in chosen]
    return deletion, insertion


def _text_curves(model, texts, values, targets, fractions, seed, repeats, mask=None):
    from explainers.perturb import batched_probabilities, prepare_texts

    out: tuple[list, list, list, list, list] = ([], [], [], [], [])
    for i, (text, attribution) in enumerate(zip(texts, values)):
        tokens = model.tokenize(text)
        if len(tokens) != len(attribution):
            raise ValueError(f"input {i}: {len(attribution)} values for the {len(tokens)} tokens the model reads")
        tie_rng, random_rng = _rngs(seed, i)
        if not tokens:  # nothing to remove: the curves are the model's output for the empty text
            score = batched_probabilities(model, prepare_texts([""]))[0, targets[i]]
            flat = np.full(len(fractions), score)
            random_flat = np.repeat(flat[None], min(repeats, 1), axis=0)  # no rows (NaN) without a reference
            _collect(out, flat, flat, random_flat, random_flat, fractions, fractions)
            continue
        orders = [attribution_order(attribution, tie_rng)] + [random_rng.permutation(len(tokens)) for _ in range(repeats)]
        texts_batch: list[str] = []
        # The random orders get the same variants (removal or the same mask) as the explanation's.
        for order in orders:
            deletion, insertion = _text_variants(tokens, order, mask)
            texts_batch += deletion + insertion
        scores = batched_probabilities(model, prepare_texts(texts_batch), FORWARD_BATCH)[:, targets[i]]
        scores = scores.reshape(1 + repeats, 2, len(tokens) + 1)
        points = np.arange(len(tokens) + 1) / len(tokens)
        _collect(out, scores[0, 0], scores[0, 1], scores[1:, 0], scores[1:, 1], points, fractions)
    return out


# --- sanity check: model-parameter randomisation --------------------------------------------


def _weighted_layers(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, layer) of every layer with a kernel or an embedding table, nested models expanded, in order."""
    import keras

    found = []
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            found.extend(_weighted_layers(layer, path + "/"))
        elif hasattr(layer, "kernel") or hasattr(layer, "embeddings"):
            found.append((path, layer))
    return found


def _all_layers(model: Any) -> list[Any]:
    """Every layer, nested models expanded in place (depth first, in model order)."""
    import keras

    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def _copy_vocabularies(source: Any, clone: Any) -> None:
    """Give a clone's lookup layers (TextVectorization, StringLookup ...) the source's vocabulary.

    clone_model rebuilds each layer from its config, and an *adapted* vocabulary (as in the
    keras.io text recipes) is not part of the config, nor a weight: without this the clone's
    lookup table is empty and its first call fails with "Table not initialized"."""
    for original, copy in zip(_all_layers(source), _all_layers(clone)):
        if hasattr(original, "get_vocabulary") and hasattr(copy, "set_vocabulary"):
            copy.set_vocabulary(original.get_vocabulary())


def _reinitialise(layer: Any, seed: int) -> None:
    """Replace a layer's kernel (or embeddings) by Glorot-uniform noise and its biases by zeros."""
    import keras

    new_weights = []
    for i, variable in enumerate(layer.weights):
        shape = tuple(variable.shape)
        if len(shape) >= 2:
            initializer = keras.initializers.GlorotUniform(seed=seed + i)
            new_weights.append(np.asarray(initializer(shape), dtype=np.float32))
        else:
            new_weights.append(np.zeros(shape, dtype=np.float32))
    layer.set_weights(new_weights)


def _explainer_class(method: "str | type[Explainer]") -> "type[Explainer]":
    if isinstance(method, str):
        from explainers import registry

        return registry.get(method)
    return method


def constructor_params(method: "str | type[Explainer]", explanation: Explanation) -> dict[str, Any]:
    """The parameters to re-create the explainer that produced `explanation`.

    Every method records exactly its constructor parameters, so this reads them back; names
    the method does not declare (an explanation built by hand, or by an older version) are
    left out, so the result can always be passed to the constructor.
    """
    params_class = getattr(_explainer_class(method), "Params", None)
    declared = params_class.specs() if params_class is not None else {}
    return {k: v for k, v in explanation.params.items() if k in declared}


# --- the trust report for one explanation --------------------------------------------------------


@dataclass(frozen=True)
class GroundTruth:
    """What is known to matter in one input: an object mask, a planted cue, rationale words."""

    mask: np.ndarray | None = None
    cue_mask: np.ndarray | None = None
    rationale: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrustReport:
    """The figures for one explanation, a plain-language verdict and the curves behind them.

    level: "good" (beats random ordering on both curves), "mixed" (on one) or "poor" (on neither).
    figures: name -> value; always deletion_auc, insertion_auc and their random_*
    references; with ground truth also mask_mass/mask_share/pointing_game,
    cue_mass/cue_share or rationale_overlap/rationale_chance; with other explanations
    agreement_<method>_rank and _top. The randomisation check is explainers.sanity's.
    """

    method: str
    level: str
    verdict: str
    figures: dict[str, float]
    curves: Curves
    seconds: float


def _as_ground_truth(ground_truth: Any) -> GroundTruth | None:
    if ground_truth is None or isinstance(ground_truth, GroundTruth):
        return ground_truth
    if isinstance(ground_truth, np.ndarray):
        return GroundTruth(mask=ground_truth)
    if isinstance(ground_truth, (list, tuple)) and all(isinstance(t, str) for t in ground_truth):
        return GroundTruth(rationale=tuple(ground_truth))
    raise ValueError("ground_truth must be a GroundTruth, an object mask (H x W array) or a list of rationale words")


def trust_summary(
    model: "LoadedModel",
    explanation: Explanation,
    input: Any,
    ground_truth: GroundTruth | np.ndarray | Sequence[str] | None = None,
    *,
    others: Sequence[Explanation] = (),
    steps: int = DEFAULT_STEPS,
    baseline: str | None = None,
    seed: int = 0,
    random_repeats: int = 3,
) -> TrustReport:
    """Every trust figure for one explanation of one input, with a one-sentence verdict.

    input: the explained image (uint8, model size or any size) or text.
    ground_truth: a GroundTruth, or just an object mask, or just rationale words.
    others: explanations of the same input by other methods (adds agreement figures).
    baseline: for deletion/insertion, one of BASELINES[model.modality]; None = its default.
    """
    started = time.perf_counter()
    curves = deletion_insertion(model, [input], [explanation], steps=steps, baseline=baseline, seed=seed,
                                random_repeats=random_repeats)
    figures: dict[str, float] = {
        name: float(getattr(curves, name)[0])
        for name in ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")
    }
    figures["probability"] = float(curves.deletion[0, 0])
    figures.update(_localisation_figures(model, explanation, input, _as_ground_truth(ground_truth)))
    for other in others:
        if other.method != explanation.method and np.shape(other.values) == np.shape(explanation.values):
            agreed = agreement(explanation.values, other.values)
            figures[f"agreement_{other.method}_rank"] = agreed["rank_correlation"]
            figures[f"agreement_{other.method}_top"] = agreed["top_overlap"]
    level, verdict = _verdict(model.modality, figures, curves)
    return TrustReport(
        method=explanation.method, level=level, verdict=verdict, figures=figures, curves=curves,
        seconds=time.perf_counter() - started,
    )


def _localisation_figures(model: "LoadedModel", explanation: Explanation, input: Any, truth: GroundTruth | None) -> dict[str, float]:
    figures: dict[str, float] = {}
    if truth is None:
        return figures
    if model.modality is Modality.TEXT:
        if truth.rationale is not None:
            tokens = explanation.tokens or tuple(model.tokenize(str(input)))
            figures["rationale_overlap"] = rationale_overlap(tokens, explanation.values, truth.rationale)
            figures["rationale_chance"] = rationale_chance(tokens, truth.rationale)
        return figures
    if truth.mask is not None and np.any(truth.mask):
        figures["mask_mass"] = float(mask_mass(explanation.values, truth.mask))
        figures["mask_share"] = float(area_share(truth.mask))
        figures["pointing_game"] = float(pointing_game(explanation.values, truth.mask))
        # A uniform map's score: the chance of hitting the (dilated) object by pointing at random.
        figures["pointing_chance"] = float(pointing_game(np.ones(truth.mask.shape, np.float32), truth.mask))
    if truth.cue_mask is not None and np.any(truth.cue_mask):
        figures["cue_mass"] = float(cue_mass(explanation.values, truth.cue_mask))
        figures["cue_share"] = float(area_share(truth.cue_mask))
    return figures


def curve_tests(curves: Curves, index: int = 0) -> dict[str, dict[str, float | bool]]:
    """For one input: each curve test's gain over random, the gap it could win, and the outcome.

    {"deletion": {"gain", "gap", "informative", "won"}, "insertion": {...}}; see WIN_SHARE.
    """
    best_deletion = min(curves.deletion[index].min(), curves.random_deletion[index].min())
    best_insertion = max(curves.insertion[index].max(), curves.random_insertion[index].max())
    rows = {
        "deletion": (curves.random_deletion_auc[index] - curves.deletion_auc[index],
                     curves.random_deletion_auc[index] - best_deletion),
        "insertion": (curves.insertion_auc[index] - curves.random_insertion_auc[index],
                      best_insertion - curves.random_insertion_auc[index]),
    }
    tests: dict[str, dict[str, float | bool]] = {}
    for name, (gain, gap) in rows.items():
        informative = bool(gap >= MIN_GAP)
        tests[name] = {"gain": float(gain), "gap": float(gap), "informative": informative,
                       "won": bool(informative and gain >= WIN_SHARE * gap)}
    return tests


def _verdict(modality: Modality, figures: Mapping[str, float], curves: Curves) -> tuple[str, str]:
    unit = "words" if modality is Modality.TEXT else "pixels"
    tests = curve_tests(curves)
    informative = [name for name, test in tests.items() if test["informative"]]
    won = [name for name in informative if tests[name]["won"]]
    where = _where_clause(figures)
    areas = f"(deletion area {figures['deletion_auc']:.2f} vs {figures['random_deletion_auc']:.2f})"
    if not informative:
        return "mixed", (
            f"Undecided: hiding the {unit} in any order changes the prediction about equally, so the curves cannot "
            f"test this map{where}."
        )
    if len(won) == len(informative):
        action = "hiding" if "deletion" in won else "restoring"
        return "good", (
            f"Faithful: {action} the highlighted {unit} first moves the model's confidence faster than a random "
            f"order {areas}{where}."
        )
    if won:
        better = "removing" if won == ["deletion"] else "restoring"
        return "mixed", (
            f"Partly faithful: {better} the highlighted {unit} first changes the prediction more than a random "
            f"order, but the other test shows little difference{where}."
        )
    return "poor", (
        f"Not faithful here: the highlighted {unit} change the prediction no more than random ones {areas}{where}."
    )


def _where_clause(figures: Mapping[str, float]) -> str:
    if "cue_mass" in figures and not math.isnan(figures["cue_mass"]):
        return (f", and {figures['cue_mass']:.0%} of it sits on the planted corner mark, "
                f"which covers only {figures['cue_share']:.1%} of the image")
    if "mask_mass" in figures and not math.isnan(figures["mask_mass"]):
        return f", and {figures['mask_mass']:.0%} of it lies on the object, which covers {figures['mask_share']:.0%} of the image"
    if "rationale_overlap" in figures and not math.isnan(figures["rationale_overlap"]):
        return f", and {figures['rationale_overlap']:.0%} of its top words are the words that carry the sentiment"
    return ""
