"""A model version's manifest.json as one typed, frozen object.

Why: the manifest used to be read as nested dict lookups all over the code
(`manifest.get("metrics", {}).get("test", {})...`), each with its own default and none
checking types, so a damaged file failed far from where it was read, with a KeyError.
`Manifest.from_dict` checks the file once, at the edge, and a damaged one raises
`ModelError` with one sentence naming the field; after that code reads attributes:
`m.classes`, `m.input.height`, `m.metrics.test.accuracy`, `m.lineage.sha256`.

`to_dict` writes exactly the JSON written before this type existed (manifests on disk keep
their format; the shipped `models/zoo/*/manifest.json` are read as they are, never rewritten):
a field that is None is left out, except `parent`, `dataset` and `metrics`, which every
writer has always written (null / {} when there is nothing). Keys this module does not know
are kept in `extra`, so a manifest from a newer workbench survives a rewrite unchanged.

Fields the JSON keeps flat but that belong together are grouped: `lineage` (where the
weights came from: parent version, data hashes, corrections, the file's sha256, the
registered file's source).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from foundation.errors import ModelError
from foundation.types import Modality

DEFAULT_WHERE = "the model manifest"


# ----------------------------------------------------------------------- reading


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    """One JSON object being read: typed getters that name the field when a value is wrong."""

    def __init__(self, data: Any, path: str, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ModelError(f"{where} is damaged: {path or 'the file'} should be a JSON object, not "
                             f"{_shown(data)}; restore the file or register the model again.")
        self.data, self.path, self.where = data, path, where
        self.used: set[str] = set()

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _wrong(self, key: str, expected: str, value: Any) -> ModelError:
        return ModelError(f"{self.where} is damaged: {self._field(key)} should be {expected}, not "
                          f"{_shown(value)}; restore the file or register the model again.")

    def get(self, key: str, required: bool = False) -> Any:
        self.used.add(key)
        value = self.data.get(key)
        if value is None and required:
            raise ModelError(f"{self.where} is damaged: {self._field(key)} is missing; "
                             "restore the file or register the model again.")
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.get(key, required)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "text", value)
        return value

    def whole(self, key: str) -> int | None:
        value = self.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._wrong(key, "a whole number", value)
        return value

    def number(self, key: str) -> float | None:
        value = self.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise self._wrong(key, "a number", value)
        return value

    def flag(self, key: str) -> bool | None:
        value = self.get(key)
        if value is not None and not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def texts(self, key: str, required: bool = False) -> tuple[str, ...] | None:
        value = self.get(key, required)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise self._wrong(key, "a list of texts", value)
        return None if value is None else tuple(value)

    def text_map(self, key: str) -> dict[str, str] | None:
        value = self.get(key)
        if value is not None and (not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values())):
            raise self._wrong(key, "an object of texts", value)
        return None if value is None else dict(value)

    def json_object(self, key: str) -> dict[str, Any] | None:
        """Any JSON object, kept as it is (a deep copy, so the caller's dict is never shared)."""
        value = self.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise self._wrong(key, "a JSON object", value)
        return None if value is None else copy.deepcopy(dict(value))

    def child(self, key: str) -> _Reader | None:
        value = self.get(key)
        return None if value is None else _Reader(value, self._field(key), self.where)

    def extra(self) -> dict[str, Any]:
        return {key: copy.deepcopy(value) for key, value in self.data.items() if key not in self.used}


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Write `key` only when it has a value: absent fields stay absent on disk."""
    if value is not None:
        out[key] = value


# ------------------------------------------------------------------------ parts


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """The manifest's "input": what the model is fed (image size and pixel range, or text length)."""

    type: str | None = None  # "image" or "text"
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    rescales_inputs: bool | None = None  # True: the model takes 0..255 pixels and rescales them itself
    value_range: tuple[float, float] | None = None
    sequence_length: int | None = None
    tokenization: str | None = None
    # How pixels become the model's tensor (`models.model_io.PRESETS`); older manifests record
    # only rescales_inputs, read by `preprocessing_preset`.
    preprocessing: str | None = None
    mean: tuple[float, ...] | None = None  # "custom" preset only, in 0..255 units
    std: tuple[float, ...] | None = None
    # Token-id text models (the vocabulary lives outside the model; index = id):
    encoding: str | None = None  # "token_ids"; absent for string-input models
    vocabulary: tuple[str, ...] | None = None
    oov_id: int | None = None
    padding: str | None = None  # "post" (TextVectorization) or "pre" (keras.utils.pad_sequences)
    standardize: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def preprocessing_preset(self) -> str:
        """The preset in force: the recorded one, else 0-1 for models recorded as expecting 0..1."""
        if self.preprocessing:
            return self.preprocessing
        return "0-1" if self.rescales_inputs is False else "inside"

    @property
    def pixel_scale(self) -> float:
        """What to multiply 0..255 pixels by: 1/255 only for models recorded as expecting 0..1."""
        return 1.0 if self.rescales_inputs is not False else 1.0 / 255.0

    @classmethod
    def from_dict(cls, data: Any, where: str = DEFAULT_WHERE, path: str = "input") -> InputSpec:
        return cls._read(_Reader(data, path, where))

    @classmethod
    def _read(cls, r: _Reader) -> InputSpec:
        value_range = r.get("value_range")
        if value_range is not None and (not isinstance(value_range, list) or len(value_range) != 2 or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in value_range)):
            raise r._wrong("value_range", "a list of two numbers", value_range)
        return cls(type=r.text("type"), height=r.whole("height"), width=r.whole("width"),
                   channels=r.whole("channels"), rescales_inputs=r.flag("rescales_inputs"),
                   value_range=None if value_range is None else (value_range[0], value_range[1]),
                   sequence_length=r.whole("sequence_length"), tokenization=r.text("tokenization"),
                   preprocessing=r.text("preprocessing"), mean=cls._numbers(r, "mean"), std=cls._numbers(r, "std"),
                   encoding=r.text("encoding"), vocabulary=r.texts("vocabulary"), oov_id=r.whole("oov_id"),
                   padding=r.text("padding"), standardize=r.text("standardize"),
                   extra=r.extra())

    @staticmethod
    def _numbers(r: _Reader, key: str) -> tuple[float, ...] | None:
        value = r.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
            raise r._wrong(key, "a list of numbers", value)
        return tuple(float(v) for v in value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("type", "height", "width", "channels", "rescales_inputs", "sequence_length", "tokenization",
                    "preprocessing", "encoding", "oov_id", "padding", "standardize"):
            _put(out, key, getattr(self, key))
        for key in ("mean", "std", "vocabulary"):
            _put(out, key, None if getattr(self, key) is None else list(getattr(self, key)))
        _put(out, "value_range", None if self.value_range is None else list(self.value_range))
        return {**out, **copy.deepcopy(self.extra)}

    @property
    def is_empty(self) -> bool:
        return not self.to_dict()


@dataclass(frozen=True, kw_only=True)
class ClassMetrics:
    """One class's row of the per-class table."""

    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    support: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _read(cls, r: _Reader) -> ClassMetrics:
        return cls(precision=r.number("precision"), recall=r.number("recall"), f1=r.number("f1"),
                   support=r.whole("support"), extra=r.extra())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("precision", "recall", "f1", "support"):
            _put(out, key, getattr(self, key))
        return {**out, **copy.deepcopy(self.extra)}


@dataclass(frozen=True, kw_only=True)
class SplitMetrics:
    """Metrics measured on one split (`models.metrics.classification_metrics`); empty when not measured."""

    accuracy: float | None = None
    n: int | None = None
    per_class: dict[str, ClassMetrics] = field(default_factory=dict)
    confusion: tuple[tuple[int, ...], ...] | None = None  # rows = truth, columns = prediction
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> bool:
        """Whether anything was measured (a split recorded as {} was not)."""
        return bool(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, where: str = DEFAULT_WHERE, path: str = "metrics") -> SplitMetrics:
        return cls._read(_Reader(data, path, where))

    @classmethod
    def _read(cls, r: _Reader) -> SplitMetrics:
        per_class_reader = r.child("per_class")
        per_class: dict[str, ClassMetrics] = {}
        if per_class_reader is not None:
            for name in per_class_reader.data:
                per_class_reader.get(name, required=True)  # a null row is damage, not "not measured"
                per_class[name] = ClassMetrics._read(per_class_reader.child(name))  # type: ignore[arg-type]
        return cls(accuracy=r.number("accuracy"), n=r.whole("n"), per_class=per_class,
                   confusion=cls._confusion(r), extra=r.extra())

    @staticmethod
    def _confusion(r: _Reader) -> tuple[tuple[int, ...], ...] | None:
        value = r.get("confusion")
        if value is None:
            return None
        if not isinstance(value, list) or not all(
                isinstance(row, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in row)
                for row in value):
            raise r._wrong("confusion", "a table of whole numbers", value)
        return tuple(tuple(row) for row in value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "accuracy", self.accuracy)
        _put(out, "n", self.n)
        if self.per_class:
            out["per_class"] = {name: row.to_dict() for name, row in self.per_class.items()}
        _put(out, "confusion", None if self.confusion is None else [list(row) for row in self.confusion])
        return {**out, **copy.deepcopy(self.extra)}


_UNMEASURED = SplitMetrics()


@dataclass(frozen=True)
class Metrics:
    """Metrics per split ("val", "test", and any other test split such as "test_nocue")."""

    splits: dict[str, SplitMetrics] = field(default_factory=dict)

    def get(self, split: str) -> SplitMetrics:
        """The split's metrics; an empty `SplitMetrics` (accuracy None) when it was not measured."""
        return self.splits.get(split, _UNMEASURED)

    @property
    def test(self) -> SplitMetrics:
        return self.get("test")

    @property
    def val(self) -> SplitMetrics:
        return self.get("val")

    def __contains__(self, split: object) -> bool:
        return split in self.splits

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    def items(self) -> Iterator[tuple[str, SplitMetrics]]:
        return iter(self.splits.items())

    @classmethod
    def from_dict(cls, data: Any, where: str = DEFAULT_WHERE, path: str = "metrics") -> Metrics:
        return cls._read(_Reader(data, path, where))

    @classmethod
    def _read(cls, r: _Reader) -> Metrics:
        return cls({split: SplitMetrics._read(r.child(split) or _Reader({}, "", r.where))  # a null split reads as {}
                    for split in r.data})

    def to_dict(self) -> dict[str, Any]:
        return {split: values.to_dict() for split, values in self.splits.items()}


@dataclass(frozen=True, kw_only=True)
class Training:
    """How the weights were trained: recipe, the TrainConfig as recorded, time, command."""

    recipe: str | None = None
    config: dict[str, Any] | None = None  # `models.training.config_dict`; kept as recorded
    seconds: float | None = None
    command: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = DEFAULT_WHERE, path: str = "training") -> Training:
        return cls._read(_Reader(data, path, where))

    @classmethod
    def _read(cls, r: _Reader) -> Training:
        return cls(recipe=r.text("recipe"), config=r.json_object("config"), seconds=r.number("seconds"),
                   command=r.text("command"), extra=r.extra())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "recipe", self.recipe)
        _put(out, "config", copy.deepcopy(self.config))
        _put(out, "seconds", self.seconds)
        _put(out, "command", self.command)
        return {**out, **copy.deepcopy(self.extra)}


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where a registered user model came from (path or upload label, and that file's sha256)."""

    path: str | None = None
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _read(cls, r: _Reader) -> Source:
        return cls(path=r.text("path"), sha256=r.text("sha256"), extra=r.extra())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "path", self.path)
        _put(out, "sha256", self.sha256)
        return {**out, **copy.deepcopy(self.extra)}


@dataclass(frozen=True, kw_only=True)
class Corrections:
    """Which ledger state a retrained version learnt from."""

    ledger_event_id: int | None = None
    snapshot_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _read(cls, r: _Reader) -> Corrections:
        return cls(ledger_event_id=r.whole("ledger_event_id"), snapshot_size=r.whole("snapshot_size"),
                   extra=r.extra())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ledger_event_id": self.ledger_event_id}  # null = no event yet, as written
        _put(out, "snapshot_size", self.snapshot_size)
        return {**out, **copy.deepcopy(self.extra)}


@dataclass(frozen=True, kw_only=True)
class Lineage:
    """Where the weights came from. Flat keys in the JSON, grouped here."""

    parent: str | None = None  # the version this one was fine-tuned from
    data_hash: str | None = None
    data_snapshot_hash: str | None = None  # the corrected training data (workbench.snapshots)
    train_split: str | None = None
    labels_changed: int | None = None
    corrections: Corrections | None = None
    sha256: str | None = None  # of the model file
    source: Source | None = None  # registered user models only

    @classmethod
    def _read(cls, r: _Reader) -> Lineage:
        corrections, source = r.child("corrections"), r.child("source")
        return cls(parent=r.text("parent"), data_hash=r.text("data_hash"),
                   data_snapshot_hash=r.text("data_snapshot_hash"), train_split=r.text("train_split"),
                   labels_changed=r.whole("labels_changed"),
                   corrections=None if corrections is None else Corrections._read(corrections),
                   sha256=r.text("sha256"), source=None if source is None else Source._read(source))

    def write_into(self, out: dict[str, Any]) -> None:
        out["parent"] = self.parent  # always written: null for a first version
        for key in ("data_hash", "data_snapshot_hash", "train_split", "labels_changed", "sha256"):
            _put(out, key, getattr(self, key))
        _put(out, "corrections", None if self.corrections is None else self.corrections.to_dict())
        _put(out, "source", None if self.source is None else self.source.to_dict())


# --------------------------------------------------------------------- manifest


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """One model version's manifest. Build it with keywords, or read one with `from_dict`."""

    modality: Modality
    classes: tuple[str, ...]
    input: InputSpec = field(default_factory=InputSpec)
    name: str | None = None
    version: str | None = None
    dataset: str | None = None
    lineage: Lineage = field(default_factory=Lineage)
    metrics: Metrics = field(default_factory=Metrics)  # on the clean held-out splits
    parent_metrics: Metrics | None = None  # the parent measured on the same splits, before fine-tuning
    training: Training | None = None
    recipe: str | None = None
    intended_use: str | None = None
    gradcam_layer: str | None = None
    # What the model's output is (`models.model_io.OUTPUT_KINDS`); None for softmax, as every
    # manifest written before output kinds existed.
    output: dict[str, Any] | None = None
    vocabulary_size: int | None = None
    file: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    created_as: str | None = None  # "candidate": published for review, not yet promoted
    software: dict[str, str] | None = None
    inferred: dict[str, str] | None = None  # user models: how each input field was worked out
    notes: tuple[str, ...] | None = None
    simulation: dict[str, Any] | None = None  # `workbench simulate-review`'s own bookkeeping
    lesson_fix: str | None = None  # set on the version the shortcut lesson retrained
    extra: dict[str, Any] = field(default_factory=dict)  # keys this module does not know, kept as read

    @classmethod
    def from_dict(cls, data: Any, where: str = DEFAULT_WHERE) -> Manifest:
        """Read a manifest's JSON. Missing optional fields are None; a wrong type raises ModelError."""
        r = _Reader(data, "", where)
        modality = r.text("modality", required=True)
        try:
            modality_value = Modality(modality)
        except ValueError:
            raise r._wrong("modality", "'image' or 'text'", modality) from None
        input_reader = r.child("input")
        parent_metrics = r.child("parent_metrics")
        training = r.child("training")
        return cls(
            modality=modality_value,
            classes=r.texts("classes", required=True),  # type: ignore[arg-type]
            input=InputSpec() if input_reader is None else InputSpec._read(input_reader),
            name=r.text("name"), version=r.text("version"), dataset=r.text("dataset"),
            lineage=Lineage._read(r),
            metrics=Metrics._read(r.child("metrics") or _Reader({}, "metrics", where)),
            parent_metrics=None if parent_metrics is None else Metrics._read(parent_metrics),
            training=None if training is None else Training._read(training),
            recipe=r.text("recipe"), intended_use=r.text("intended_use"), gradcam_layer=r.text("gradcam_layer"),
            output=cls._output(r),
            vocabulary_size=r.whole("vocabulary_size"), file=r.text("file"),
            created_at=r.text("created_at"), created_by=r.text("created_by"), created_as=r.text("created_as"),
            software=r.text_map("software"), inferred=r.text_map("inferred"), notes=r.texts("notes"),
            simulation=r.json_object("simulation"), lesson_fix=r.text("lesson_fix"),
            extra=r.extra(),
        )

    @staticmethod
    def _output(r: _Reader) -> dict[str, Any] | None:
        output = r.json_object("output")
        if output is not None and not isinstance(output.get("kind"), str):
            raise r._wrong("output", 'an object like {"kind": "logits"}', output)
        return output

    @property
    def output_kind(self) -> str:
        """softmax, logits, sigmoid or binary-logit (`models.model_io.OUTPUT_KINDS`)."""
        return str((self.output or {}).get("kind") or "softmax")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object as written to manifest.json (the file is written with sorted keys)."""
        out: dict[str, Any] = {"modality": self.modality.value, "classes": list(self.classes)}
        if not self.input.is_empty:
            out["input"] = self.input.to_dict()
        _put(out, "name", self.name)
        _put(out, "version", self.version)
        out["dataset"] = self.dataset  # always written: null for a user model without data
        self.lineage.write_into(out)
        out["metrics"] = self.metrics.to_dict()  # always written: {} when nothing was measured
        _put(out, "parent_metrics", None if self.parent_metrics is None else self.parent_metrics.to_dict())
        _put(out, "training", None if self.training is None else self.training.to_dict())
        for key in ("recipe", "intended_use", "gradcam_layer", "vocabulary_size", "file",
                    "created_at", "created_by", "created_as", "lesson_fix"):
            _put(out, key, getattr(self, key))
        for key in ("software", "inferred", "simulation", "output"):
            _put(out, key, copy.deepcopy(getattr(self, key)))
        _put(out, "notes", None if self.notes is None else list(self.notes))
        return {**out, **copy.deepcopy(self.extra)}


def as_manifest(value: Manifest | Mapping[str, Any], where: str = DEFAULT_WHERE) -> Manifest:
    """A Manifest from either form: `store.publish_version` also takes a JSON-shaped dict (as tests write them)."""
    return value if isinstance(value, Manifest) else Manifest.from_dict(value, where)
