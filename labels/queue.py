"""The review queue: rank a dataset's examples by how likely their label is wrong.

How the probabilities are made out-of-sample, cheaply:

1. The current model runs once over the split; we keep its penultimate-layer features (the
   input of its last Dense layer, see `labels.features`) and its own probabilities.
2. K-fold cross-validation (default 5, stratified): a fresh softmax head — multinomial
   logistic regression on standardised features — is trained on K-1 folds with the labels
   as they stand (shipped labels plus ledger corrections) and predicts the held-out fold.
   This is k-fold fine-tuning of the model's head with the base frozen: every example gets
   probabilities from a head that never saw its label.
3. cleanlab's `rank.get_label_quality_scores` (self-confidence: the out-of-sample
   probability of the given label) orders the examples, lowest quality first, and
   `filter.find_label_issues` (confident learning) marks the ones it calls label errors.
   The margin between the two most likely classes gives an uncertainty score for active
   learning.

Caveat, stated plainly: the frozen base was trained by whoever made the model. The sample
models were trained on the *clean* train split, so their features already separate the true
classes, which makes the flipped labels easy to find. The shipped recall numbers measure the
queue on the model you actually have, not a model that learned from the noisy labels.

Features and out-of-sample probabilities are cached in the workspace (`cache/audit/`, numpy
`.npz` without pickle) per model version, split content and labels, so the second look is fast.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from foundation import config
from foundation.atomic import atomic_write
from foundation.errors import WorkbenchError
from labels.schema import AMBIGUOUS, LabelEvent

DEFAULT_K_FOLDS = 5
DEFAULT_SPLIT = "train_noisy"
# Inverse L2 strength of the fresh head; mild, because the head should follow the labels
# of the K-1 folds without memorising the few wrong ones.
HEAD_C = 0.1
# Bump when the ranking method or the features change, so cached results of the old ones are not
# reused (queue-2: features of a model whose last Dense is nested come from that Dense's input).
METHOD_VERSION = "queue-2"
ORDERS = ("issue", "uncertainty")
QUALITY_METHOD = "self_confidence"
# From this many examples the confident-learning verdicts come from cleanlab's batched,
# memory-bounded path, CLEANLAB_BATCH_SIZE rows at a time (a million-image audit on Ray).
BATCHED_FROM = 500_000
CLEANLAB_BATCH_SIZE = 100_000
_FLOOR = 1e-6

Progress = Callable[[str, float], None]


@dataclass(frozen=True, eq=False)
class AuditResult:
    """The audit of one split: a per-example table in dataset order, plus summary numbers.

    `table` columns: example_id, index, original_label (as shipped), given_label (after the
    ledger corrections at audit time), predicted_label, confidence (max out-of-sample
    probability), prob_given, label_quality (cleanlab, 1 = clean), issue_score
    (1 - label_quality), issue_rank (1 = most likely wrong), is_label_issue (cleanlab's
    confident-learning verdict), uncertainty (1 - margin of the top two classes),
    uncertainty_rank, model_label and model_confidence (the model's own prediction),
    reviewed (a decision was in the ledger at audit time) and, when the dataset ships its
    flipped list, is_flipped (listed as flipped and still carrying the flipped label).
    """

    model_name: str
    model_version: str
    dataset: str
    split: str
    classes: tuple[str, ...]
    k_folds: int
    seconds: float
    table: pd.DataFrame
    probabilities: np.ndarray  # out-of-sample, N x K, dataset order
    recall_at_2x: float | None
    n_flipped: int
    feature_layer: str
    from_cache: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def ranking(self, order: str = "issue", top: int | None = None) -> pd.DataFrame:
        """The table sorted by `order` ("issue" or "uncertainty"), optionally cut to `top` rows."""
        ranked = self.table.sort_values(_rank_column(order), kind="stable")
        return ranked if top is None else ranked.head(top)

    def summary(self, top: int = 50, order: str = "issue", exclude_reviewed: bool = False) -> dict[str, Any]:
        """JSON-ready summary with the first `top` rows of the ranking (optionally unreviewed only)."""
        columns = [c for c in JSON_COLUMNS if c in self.table.columns]
        ranked = self.ranking(order)
        if exclude_reviewed:
            ranked = ranked[~ranked["reviewed"]]
        rows = ranked.head(top)[columns].to_dict(orient="records")
        return {
            "model": self.model_name,
            "version": self.model_version,
            "dataset": self.dataset,
            "split": self.split,
            "n": int(len(self.table)),
            "k_folds": self.k_folds,
            "seconds": round(self.seconds, 3),
            "recall_at_2x": None if self.recall_at_2x is None else round(self.recall_at_2x, 4),
            "n_flipped": self.n_flipped,
            "order": order,
            "feature_layer": self.feature_layer,
            "from_cache": self.from_cache,
            "counts": dict(self.counts),
            "ranking": [_json_row(row) for row in rows],
        }


JSON_COLUMNS = (
    "issue_rank", "example_id", "index", "given_label", "predicted_label", "confidence",
    "prob_given", "label_quality", "is_label_issue", "uncertainty", "uncertainty_rank",
    "model_label", "model_confidence", "reviewed", "is_flipped",
)


# --- the pure steps -------------------------------------------------------------------------


def out_of_sample_probabilities(
    features: np.ndarray, labels: np.ndarray, n_classes: int, *, k_folds: int = DEFAULT_K_FOLDS,
    seed: int = 0, progress: Progress | None = None,
) -> np.ndarray:
    """N x K probabilities, each row from a softmax head trained on the other folds only."""
    from sklearn.model_selection import KFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n < 2:
        raise WorkbenchError("the audit needs at least 2 examples to cross-validate.")
    k = max(2, min(int(k_folds), n))
    counts = np.bincount(labels, minlength=n_classes)
    # Stratify when every present class can give each fold an example; otherwise plain folds.
    stratify = counts[counts > 0].min() >= k
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=k, shuffle=True, random_state=seed)
    result = np.zeros((n, n_classes), dtype=np.float64)
    # Small dense problems: BLAS threads only fight each other (10x slower on a busy 2-core box).
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fold, (train, held_out) in enumerate(splitter.split(features, labels)):
            result[held_out] = fit_predict_head(features[train], labels[train], features[held_out], n_classes)
            if progress:
                progress(f"cross-validation fold {fold + 1} of {k}", (fold + 1) / k)
    return result


def fit_predict_head(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                     n_classes: int) -> np.ndarray:
    """Train a standardised multinomial logistic-regression head; probabilities for test_x (all K columns)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    present = np.unique(train_y)
    probs = np.full((len(test_x), n_classes), _FLOOR)
    if len(present) == 1:  # nothing to learn: the one class seen
        probs[:, present[0]] = 1.0
    else:
        scaler = StandardScaler().fit(train_x)
        head = LogisticRegression(C=HEAD_C, max_iter=2000).fit(scaler.transform(train_x), train_y)
        probs[:, head.classes_] = np.maximum(head.predict_proba(scaler.transform(test_x)), _FLOOR)
    # Classes absent from the training folds keep a floor probability, then rows sum to 1.
    return probs / probs.sum(axis=1, keepdims=True)


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 - (p_first - p_second): 1 when the top two classes tie, 0 when one class has it all."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape[1] < 2:
        return np.zeros(len(probabilities))
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def label_quality(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """cleanlab's label quality score (self-confidence), in [0, 1], low = likely mislabelled."""
    from cleanlab.rank import get_label_quality_scores

    return np.asarray(get_label_quality_scores(np.asarray(labels), np.asarray(probabilities),
                                               method=QUALITY_METHOD), dtype=np.float64)


def confident_learning_issues(labels: np.ndarray, probabilities: np.ndarray, *,
                              batched_from: int | None = None, batch_size: int | None = None) -> np.ndarray:
    """cleanlab's confident-learning verdict per example (bool), or all False if it cannot run.

    From `batched_from` examples (default BATCHED_FROM) cleanlab's batched, memory-bounded
    path (`find_label_issues_batched`, `batch_size` rows at a time) decides instead of the
    whole-array `find_label_issues`. Its verdicts are close to, not the same as, the whole-array
    call's (it is the approximation cleanlab offers for data that does not fit in memory);
    the ranking (`label_quality`) is per example and does not change.
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # n_jobs=1: no worker processes (inside Streamlit or a test they cost more than they save).
            if len(labels) >= (BATCHED_FROM if batched_from is None else batched_from):
                from cleanlab.experimental.label_issues_batched import find_label_issues_batched

                return np.asarray(find_label_issues_batched(
                    labels=labels, pred_probs=probabilities, batch_size=batch_size or CLEANLAB_BATCH_SIZE,
                    n_jobs=1, verbose=False, return_mask=True), dtype=bool)
            from cleanlab.filter import find_label_issues

            return np.asarray(find_label_issues(labels, probabilities, n_jobs=1), dtype=bool)
    except (ValueError, IndexError, ZeroDivisionError):
        return np.zeros(len(labels), dtype=bool)


def rank_positions(scores: np.ndarray, *, descending: bool = False) -> np.ndarray:
    """1-based rank of every entry (ties keep dataset order)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores if descending else scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def recall_at(issue_rank: np.ndarray, is_flipped: np.ndarray, factor: float = 2.0) -> float | None:
    """Share of the flipped examples found in the top factor x |flipped| of the ranking."""
    is_flipped = np.asarray(is_flipped, dtype=bool)
    n_flipped = int(is_flipped.sum())
    if n_flipped == 0:
        return None
    cutoff = int(round(factor * n_flipped))
    return float((np.asarray(issue_rank)[is_flipped] <= cutoff).sum() / n_flipped)


def is_reviewed(event: LabelEvent | None) -> bool:
    """A decision stands: a label was set (even the same one) or the example is flagged ambiguous.

    An undo back to the original label leaves the example unreviewed, so it returns to the queue.
    """
    if event is None:
        return False
    return event.action == AMBIGUOUS or event.new_label is not None


# --- building the table ---------------------------------------------------------------------


def label_indices(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Class indices of label names; a name that is not a class is refused with a message."""
    index_of = {name: i for i, name in enumerate(classes)}
    unknown = sorted({label for label in labels if label not in index_of})
    if unknown:
        raise WorkbenchError(f"labels {', '.join(map(repr, unknown))} are not classes of this dataset "
                             f"({', '.join(classes)}); correct them in the ledger first.")
    return np.asarray([index_of[label] for label in labels], dtype=np.int64)


def build_table(
    ids: Sequence[str], original: Sequence[str], given: Sequence[str], classes: Sequence[str],
    probabilities: np.ndarray, model_probabilities: np.ndarray, *,
    reviewed: Collection[str] = (), flipped: Collection[str] | None = None,
) -> pd.DataFrame:
    """The per-example audit table (dataset order) from labels and out-of-sample probabilities."""
    classes = list(classes)
    y = label_indices(given, classes)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    model_probabilities = np.asarray(model_probabilities, dtype=np.float64)
    predicted = probabilities.argmax(axis=1)
    model_predicted = model_probabilities.argmax(axis=1)
    quality = label_quality(y, probabilities)
    uncertainty = margin_uncertainty(probabilities)
    reviewed = set(reviewed)
    table = pd.DataFrame({
        "example_id": list(ids),
        "index": np.arange(len(ids)),
        "original_label": list(original),
        "given_label": list(given),
        "predicted_label": [classes[i] for i in predicted],
        "confidence": probabilities.max(axis=1),
        "prob_given": probabilities[np.arange(len(y)), y],
        "label_quality": quality,
        "issue_score": 1.0 - quality,
        "issue_rank": rank_positions(quality),
        "is_label_issue": confident_learning_issues(y, probabilities),
        "uncertainty": uncertainty,
        "uncertainty_rank": rank_positions(uncertainty, descending=True),
        "model_label": [classes[i] for i in model_predicted],
        "model_confidence": model_probabilities.max(axis=1),
        "reviewed": [eid in reviewed for eid in ids],
    })
    if flipped is not None:
        flipped = set(flipped)
        # Still wrong: listed as flipped and nobody has changed the shipped (flipped) label.
        table["is_flipped"] = [eid in flipped and g == o for eid, g, o in zip(ids, given, original)]
    return table


# --- the audit ------------------------------------------------------------------------------


def audit(
    model: Any,
    dataset: Any,
    *,
    k_folds: int = DEFAULT_K_FOLDS,
    seed: int = 0,
    ledger: Any | None = None,
    apply_corrections: bool = True,
    use_cache: bool = True,
    progress: Progress | None = None,
    extractor: Callable[[Any, Any], Any] | None = None,
) -> AuditResult:
    """Audit `dataset` (a Dataset split) with `model` (a LoadedModel); see the module doc.

    `extractor(model, inputs) -> ModelOutputs` runs the model over the inputs (default: in this
    process, `labels.features.extract`); the Ray engine passes its own, and everything after the
    features is the same code, so both engines rank alike.

    The given labels are the dataset's, with the ledger's current corrections applied when
    `apply_corrections` (ledger default: `labels.Ledger()`).
    """
    started = time.perf_counter()
    report = progress or (lambda message, fraction: None)
    _check_compatible(model, dataset)
    classes = list(dataset.classes)
    original = [classes[int(i)] for i in dataset.y]
    latest: Mapping[str, LabelEvent] = {}
    if apply_corrections:
        if ledger is None:
            from labels.ledger import Ledger

            ledger = Ledger()
        latest = ledger.latest_events(dataset.name)
    given = _labels_after(dataset.ids, original, latest)
    y = label_indices(given, classes)

    report("extracting features", 0.0)
    outputs, features_cached = _features(model, dataset, use_cache, extractor)
    model_probabilities = _align_columns(outputs.probabilities, model.classes, classes)
    report("features ready", 0.3)
    key = _cache_key("oos", _model_key(model), dataset.name, dataset.split, _dataset_digest(dataset),
                     _labels_digest(dataset.ids, given), k_folds, seed, HEAD_C, METHOD_VERSION)
    probabilities = _read_array(key, "probabilities") if use_cache else None
    oos_cached = probabilities is not None
    if probabilities is None:
        probabilities = out_of_sample_probabilities(
            outputs.features, y, len(classes), k_folds=k_folds, seed=seed,
            progress=lambda message, f: report(message, 0.3 + 0.6 * f))
        if use_cache:
            _write_arrays(key, probabilities=probabilities)
    report("ranking", 0.9)
    flipped = dataset.flipped_ids if dataset.flipped_ids else None
    reviewed = {eid for eid, event in latest.items() if is_reviewed(event)}
    table = build_table(dataset.ids, original, given, classes, probabilities, model_probabilities,
                        reviewed=reviewed, flipped=flipped)
    recall = recall_at(table["issue_rank"].to_numpy(), table["is_flipped"].to_numpy()) if flipped else None
    counts = {
        "n": int(len(table)),
        "label_issues": int(table["is_label_issue"].sum()),
        "disagreements": int((table["predicted_label"] != table["given_label"]).sum()),
        "reviewed": int(table["reviewed"].sum()),
        "corrected": int((table["given_label"] != table["original_label"]).sum()),
        "flipped_listed": len(dataset.flipped_ids),
    }
    report("done", 1.0)
    return AuditResult(
        model_name=model.name, model_version=model.version, dataset=dataset.name, split=dataset.split,
        classes=tuple(classes), k_folds=max(2, min(int(k_folds), len(y))),
        seconds=time.perf_counter() - started, table=table, probabilities=probabilities,
        recall_at_2x=recall, n_flipped=int(table["is_flipped"].sum()) if flipped else 0,
        feature_layer=outputs.feature_layer, from_cache=features_cached and oos_cached, counts=counts,
    )


def _check_compatible(model: Any, dataset: Any) -> None:
    if model.modality != dataset.modality:
        raise WorkbenchError(f"model {model.name!r} reads {model.modality.value}s but dataset "
                             f"{dataset.name!r} holds {dataset.modality.value}s; choose a matching pair.")
    if set(model.classes) != set(dataset.classes):
        raise WorkbenchError(
            f"model {model.name!r} predicts {', '.join(model.classes)} but dataset {dataset.name!r} "
            f"has classes {', '.join(dataset.classes)}; audit a dataset with the model's classes.")


def _labels_after(ids: Sequence[str], original: Sequence[str], latest: Mapping[str, LabelEvent]) -> list[str]:
    # Same rule as Ledger.current_labels, applied to events already fetched in one query.
    labels = []
    for eid, label in zip(ids, original):
        event = latest.get(eid)
        labels.append(label if event is None or event.new_label is None else event.new_label)
    return labels


def _align_columns(probabilities: np.ndarray, source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Reorder probability columns from the model's class order to the dataset's."""
    order = [list(source).index(name) for name in target]
    return np.asarray(probabilities)[:, order]


# --- the review queue (what the page shows) -------------------------------------------------


def review_queue(
    result: AuditResult,
    latest: Mapping[str, LabelEvent] | None = None,
    *,
    order: str = "issue",
    given: Collection[str] | None = None,
    predicted: Collection[str] | None = None,
    min_score: float = 0.0,
    include_reviewed: bool = False,
) -> pd.DataFrame:
    """The queue in `order`, with live ledger state and the filters applied.

    `latest` (from `Ledger.latest_events`) refreshes `current_label`, `reviewed` and
    `latest_event_id` without recomputing the audit. `score` is the column the order uses
    (issue_score or uncertainty); `given`/`predicted` keep only those labels (None = all).
    """
    table = result.ranking(order).copy()
    latest = latest or {}
    events = [latest.get(eid) for eid in table["example_id"]]
    table["current_label"] = [o if e is None or e.new_label is None else e.new_label
                              for o, e in zip(table["original_label"], events)]
    table["reviewed"] = [is_reviewed(e) for e in events]
    # object dtype: a mix of ids and None must not turn into floats with NaN.
    table["latest_event_id"] = pd.Series([None if e is None else e.id for e in events],
                                         index=table.index, dtype=object)
    table["score"] = table["issue_score" if order == "issue" else "uncertainty"]
    keep = table["score"] >= float(min_score)
    if given:
        keep &= table["current_label"].isin(list(given))
    if predicted:
        keep &= table["predicted_label"].isin(list(predicted))
    if not include_reviewed:
        keep &= ~table["reviewed"]
    return table[keep]


@dataclass(frozen=True)
class TableEdit:
    example_id: str
    new_label: str


def validate_table_edits(rows: Sequence[Mapping[str, Any]], classes: Sequence[str],
                         known_ids: Collection[str]) -> tuple[list[TableEdit], list[str]]:
    """The changes an edited table asks for, and every problem found (nothing is saved if any).

    A row changes a label when its "new_label" is a class name different from its
    "current_label"; an empty cell means "no change".
    """
    classes = set(classes)
    known_ids = set(known_ids)
    edits, problems = [], []
    for number, row in enumerate(rows, start=1):
        value = row.get("new_label")
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
            continue
        label = str(value).strip()
        example_id = str(row.get("example_id", ""))
        if example_id not in known_ids:
            problems.append(f"row {number}: example {example_id!r} is not in this dataset.")
        elif label not in classes:
            problems.append(f"row {number} ({example_id}): {label!r} is not a class; "
                            f"choose one of {', '.join(sorted(classes))}.")
        elif label != row.get("current_label"):
            edits.append(TableEdit(example_id, label))
    return edits, problems


def _rank_column(order: str) -> str:
    if order not in ORDERS:
        raise WorkbenchError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}.")
    return "issue_rank" if order == "issue" else "uncertainty_rank"


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    clean = {}
    for key, value in row.items():
        if isinstance(value, (np.bool_, bool)):
            clean[key] = bool(value)
        elif isinstance(value, (np.integer,)):
            clean[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            clean[key] = round(float(value), 6)
        else:
            clean[key] = value
    return clean


# --- the disk cache (numpy .npz without pickle, atomic writes) -----------------------------------


def cache_dir() -> Path:
    path = config.workspace_subdir("cache") / "audit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode("utf-8")).hexdigest()[:32]


def _model_key(model: Any) -> str:
    # The sha256 pins the weights even if a user folder re-uses a version name.
    return f"{model.name}@{model.version}#{model.info.lineage.sha256 or ''}"


def _dataset_digest(dataset: Any) -> str:
    from foundation.dataset import dataset_hash

    return dataset_hash(dataset)


def _labels_digest(ids: Sequence[str], labels: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([list(ids), list(labels)]).encode("utf-8")).hexdigest()


def _features(model: Any, dataset: Any, use_cache: bool, extractor: Callable[[Any, Any], Any] | None = None):
    from labels.features import ModelOutputs, extract

    key = _cache_key("features", METHOD_VERSION, _model_key(model), dataset.name, dataset.split,
                     _dataset_digest(dataset))
    if use_cache:
        stored = _read_arrays(key)
        if stored is not None and {"features", "probabilities", "feature_layer"} <= stored.keys():
            return ModelOutputs(stored["features"], stored["probabilities"], str(stored["feature_layer"])), True
    outputs = (extractor or extract)(model, dataset.x)
    if use_cache:
        _write_arrays(key, features=outputs.features, probabilities=outputs.probabilities,
                      feature_layer=np.asarray(outputs.feature_layer))
    return outputs, False


def _read_arrays(key: str) -> dict[str, np.ndarray] | None:
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry is recomputed and replaced


def _read_array(key: str, name: str) -> np.ndarray | None:
    stored = _read_arrays(key)
    return None if stored is None else stored.get(name)


def _write_arrays(key: str, **arrays: np.ndarray) -> None:
    folder = cache_dir()
    atomic_write(folder / f"{key}.npz", lambda handle: np.savez(handle, **arrays))
