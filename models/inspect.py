"""Work out what a user's Keras model needs, and say plainly what could not be worked out.

`inspect_model(keras_model, model_path)` reads the model's own structure:

* modality: a string input is a text model; a 4-D float input (N x H x W x C) an image model;
* image input: height, width and channels (3 is required: the workbench feeds RGB), and
  whether the model rescales pixels itself (a Rescaling or Normalization layer before the
  first layer with weights, looking inside nested models such as a Keras applications base);
* text input: the TextVectorization layer's output_sequence_length;
* class names: given by the caller (a list or a JSON file), else `<stem>.classes.json` or
  `classes.json` beside the model file; the count must match the model's outputs;
* the Grad-CAM layer: the last convolution, nested models included
  (`models.layers.find_last_conv_layer`).

What cannot be inferred is listed in `InferredSpec.missing` (with a question for the user
in `QUESTIONS`) and can be supplied in `overrides`; it is then saved in the manifest, so it
is asked once. Models the workbench cannot drive (several inputs, integer token inputs,
grey images, no softmax output) raise `ModelError` saying what to change.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from foundation.errors import ModelError
from foundation.types import Modality

MAX_CLASSES_FILE_BYTES = 1024 * 1024
MAX_CLASS_NAME_CHARS = 100
# Characters that would let a class name carry a Markdown link, image or HTML tag.
MARKUP_CHARACTERS = frozenset("[]<>`")
# Keras' TextVectorization defaults, which models.loaded.tokenize mirrors.
_TOKENIZER = {"standardize": "lower_and_strip_punctuation", "split": "whitespace"}

QUESTIONS = {
    "classes": "the class names, one per model output, in output order",
    "rescales_inputs": "whether the model expects pixel values 0-255 (it rescales them itself) or 0-1",
    "input_size": "the image height and width the model expects",
}


@dataclass(frozen=True)
class InferredSpec:
    """What a model needs. `input` is the manifest's "input" entry; `sources` says how each field was known."""

    modality: Modality
    input: dict[str, Any]
    n_classes: int
    classes: tuple[str, ...] | None
    gradcam_layer: str | None
    missing: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing

    def manifest_fields(self) -> dict[str, Any]:
        """The manifest entries this spec fills; refuses while something is still missing."""
        if self.missing:
            raise ModelError(f"still unknown: {missing_sentence(self.missing)}; supply them and try again.")
        fields: dict[str, Any] = {
            "modality": self.modality.value,
            "classes": list(self.classes or ()),
            "input": dict(self.input),
        }
        if self.gradcam_layer:
            fields["gradcam_layer"] = self.gradcam_layer
        return fields


def missing_sentence(missing: Sequence[str]) -> str:
    return "; ".join(QUESTIONS.get(item, item) for item in missing)


# ------------------------------------------------------------------------ walking


def iter_layers(model: Any) -> Iterator[Any]:
    """Every layer in model order, nested models expanded where they are called."""
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers") and getattr(layer, "layers", None):
            yield from iter_layers(layer)


def _single(tensors: Any, what: str) -> Any:
    items = list(tensors or [])
    if len(items) != 1:
        raise ModelError(
            f"the model has {len(items)} {what}s; the workbench drives models with exactly one {what}, "
            f"so save a model with a single {what}."
        )
    return items[0]


def _shape(tensor: Any) -> tuple[Any, ...]:
    return tuple(None if d is None else int(d) for d in tensor.shape)


# ---------------------------------------------------------------------- modality


def infer_modality(keras_model: Any) -> Modality:
    """String input -> text; 4-D float input -> image; anything else is refused with advice."""
    tensor = _single(getattr(keras_model, "inputs", None), "input")
    dtype = str(tensor.dtype)
    shape = _shape(tensor)
    if dtype == "string":
        if shape not in {(None, 1), (None,)}:
            raise ModelError(
                f"the text model's input has shape {shape}; it must take one string per example "
                "(keras.Input(shape=(1,), dtype='string')), so save it with that input."
            )
        return Modality.TEXT
    if dtype.startswith("int") or dtype.startswith("uint"):
        raise ModelError(
            f"the model takes {dtype} inputs of shape {shape}, such as token ids; the workbench feeds raw strings "
            "or images, so put the TextVectorization layer inside the model and save it again."
        )
    if dtype.startswith("float") or dtype.startswith("bfloat"):
        if len(shape) == 4:
            return Modality.IMAGE
        raise ModelError(
            f"the model's input has shape {shape}; image models must take N x height x width x 3 "
            "and text models one string per example, so save it with such an input."
        )
    raise ModelError(f"the model's input type {dtype} is not supported; use float images or string text.")


# ------------------------------------------------------------------------ outputs


def output_count(keras_model: Any) -> int:
    """Number of classes, after checking the model ends in a softmax over them."""
    tensor = _single(getattr(keras_model, "outputs", None), "output")
    shape = _shape(tensor)
    if len(shape) != 2 or shape[-1] is None or shape[-1] < 2:
        raise ModelError(
            f"the model's output has shape {shape}; the workbench needs one probability per class "
            "(N x K with K >= 2, a softmax), so end the model with Dense(K, activation='softmax')."
        )
    if not ends_in_softmax(keras_model):
        raise ModelError(
            "the model's last layer is not a softmax, so its outputs are not class probabilities; "
            "add keras.layers.Softmax() as the last layer and save it again."
        )
    return int(shape[-1])


def ends_in_softmax(keras_model: Any) -> bool:
    import keras

    layer = _output_layer(keras_model)
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = layer.get_config().get("activation") if hasattr(layer, "get_config") else None
    return activation == "softmax"


def _output_layer(keras_model: Any) -> Any:
    """The layer that produces the output, looking inside a sub-model that does."""
    layer = keras_model
    for _ in range(32):  # nesting depth is small; the bound only guards against cycles
        if not getattr(layer, "layers", None):
            return layer
        history = getattr(_single(layer.outputs, "output"), "_keras_history", None)
        inner = getattr(history, "operation", None) if history else None
        layer = inner if inner is not None and inner is not layer else layer.layers[-1]
    return layer


# ------------------------------------------------------------------------- images


def rescales_itself(keras_model: Any) -> bool:
    """True when a Rescaling or Normalization layer comes before the first layer with weights."""
    import keras

    for layer in iter_layers(keras_model):
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            return True
        if getattr(layer, "layers", None):
            continue  # a container: its own layers come next in the walk
        if layer.weights:
            return False
    return False


def _image_input(keras_model: Any, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    _, height, width, channels = _shape(keras_model.inputs[0])
    if channels != 3:
        raise ModelError(
            f"the model takes images with {channels} channel(s); the workbench feeds RGB images, "
            "so give the model a 3-channel input (it may average the channels itself) and save it again."
        )
    missing: list[str] = []
    sources: dict[str, str] = {}
    if height is not None and width is not None:
        for key, fixed in (("height", height), ("width", width)):
            if overrides.get(key) is not None and _positive_int(overrides[key], key) != fixed:
                raise ModelError(
                    f"the model's input is fixed at {width} x {height} pixels; leave the size out or give that size."
                )
        sources["input_size"] = "the model's input layer"
    elif "height" in overrides or "width" in overrides:
        height, width = _positive_int(overrides.get("height"), "height"), _positive_int(overrides.get("width"), "width")
        sources["input_size"] = "given"
    else:
        missing.append("input_size")
    if "rescales_inputs" in overrides and overrides["rescales_inputs"] is not None:
        rescales = bool(overrides["rescales_inputs"])
        sources["rescales_inputs"] = "given"
    elif rescales_itself(keras_model):
        rescales = True
        sources["rescales_inputs"] = "a Rescaling/Normalization layer near the input"
    else:
        rescales = None
        missing.append("rescales_inputs")
    spec = {
        "type": "image",
        "height": height,
        "width": width,
        "channels": 3,
        "rescales_inputs": rescales,
        "value_range": None if rescales is None else ([0, 255] if rescales else [0, 1]),
    }
    return spec, missing, sources


def _positive_int(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ModelError(f"the image {what} must be a whole number of pixels, got {value!r}.") from None
    if not 8 <= number <= 4096:
        raise ModelError(f"the image {what} must be between 8 and 4096 pixels, got {number}.")
    return number


# --------------------------------------------------------------------------- text


def text_vectorizer(keras_model: Any) -> Any | None:
    import keras

    return next((layer for layer in iter_layers(keras_model) if isinstance(layer, keras.layers.TextVectorization)), None)


def _text_input(keras_model: Any, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    notes: list[str] = []
    vectorizer = text_vectorizer(keras_model)
    length = 0
    if overrides.get("sequence_length"):
        length = int(overrides["sequence_length"])
        source = "given"
    elif vectorizer is None:
        source = "unknown (no TextVectorization layer): tokens are not truncated"
        notes.append("No TextVectorization layer was found, so the words highlighted may not match what the model reads.")
    else:
        config = vectorizer.get_config()
        length = int(config.get("output_sequence_length") or 0)
        source = "the TextVectorization layer" if length else "TextVectorization has no fixed length: not truncated"
        if any(config.get(key) != value for key, value in _TOKENIZER.items()):
            notes.append(
                "The model's TextVectorization does not lower-case, strip punctuation and split on whitespace, "
                "so the words highlighted may not line up exactly with its tokens."
            )
    spec = {
        "type": "text",
        "sequence_length": length,
        "tokenization": "lowercase, strip punctuation, split on whitespace",
    }
    return spec, notes, {"sequence_length": source}


# ------------------------------------------------------------------------ classes


def parse_typed_classes(text: str) -> list[str]:
    """Class names typed by a user: one per line, or separated by commas on one line."""
    lines = [line for line in str(text).splitlines() if line.strip()]
    parts = lines[0].split(",") if len(lines) == 1 else lines
    return [part.strip() for part in parts if part.strip()]


def read_classes_file(path: Path) -> list[str]:
    """A JSON list of class names; refuses anything else with what to write instead."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CLASSES_FILE_BYTES:
            raise ModelError(f"{path.name} is larger than 1 MB; a class list is a short JSON list of names.")
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        raise ModelError(f"{path.name} could not be read ({exc.strerror or exc}); check the path.") from None
    except (UnicodeDecodeError, ValueError):
        raise ModelError(f"{path.name} is not valid JSON; write the class names as a JSON list like [\"cat\", \"dog\"].") from None
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise ModelError(f"{path.name} must hold a JSON list of class names, like [\"cat\", \"dog\"].")
    return data


def check_classes(names: Sequence[Any], n_classes: int, where: str) -> tuple[str, ...]:
    """Names must be distinct visible strings, one per model output."""
    cleaned = []
    for name in names:
        if not isinstance(name, str):
            raise ModelError(f"class names from {where} must be text, got {name!r}.")
        name = unicodedata.normalize("NFC", name).strip()
        if not name or any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in name):
            raise ModelError(f"class names from {where} must be visible text without control characters; fix them.")
        if MARKUP_CHARACTERS.intersection(name):
            # Class names are shown in Markdown all over the app: no links, images or tags.
            raise ModelError(
                f"class names from {where} may not contain any of {' '.join(sorted(MARKUP_CHARACTERS))}; rename the class."
            )
        if len(name) > MAX_CLASS_NAME_CHARS:
            raise ModelError(f"a class name from {where} is longer than {MAX_CLASS_NAME_CHARS} characters; shorten it.")
        cleaned.append(name)
    if len(cleaned) != n_classes:
        raise ModelError(
            f"{where} lists {len(cleaned)} class names but the model has {n_classes} outputs; "
            f"give exactly {n_classes} names in output order."
        )
    if len(set(cleaned)) != len(cleaned):
        duplicate = next(name for name in cleaned if cleaned.count(name) > 1)
        raise ModelError(f"{where} lists the class {duplicate!r} twice; class names must be distinct.")
    return tuple(cleaned)


def sidecar_classes_files(model_path: Path) -> list[Path]:
    """Where a class list may sit beside a model file, in the order they are tried."""
    model_path = Path(model_path)
    return [model_path.with_name(f"{model_path.stem}.classes.json"), model_path.with_name("classes.json")]


def _find_classes(
    classes: Sequence[str] | Path | str | None, model_path: Path | None, n_classes: int
) -> tuple[tuple[str, ...] | None, str | None]:
    if isinstance(classes, (str, Path)):
        path = Path(classes)
        return check_classes(read_classes_file(path), n_classes, path.name), path.name
    if classes is not None:
        return check_classes(list(classes), n_classes, "the class names given"), "given"
    if model_path is not None:
        for candidate in sidecar_classes_files(model_path):
            if candidate.is_file():
                return check_classes(read_classes_file(candidate), n_classes, candidate.name), f"{candidate.name} beside the model"
    return None, None


# ----------------------------------------------------------------------- Grad-CAM


def _gradcam_layer(keras_model: Any, modality: Modality, requested: str | None) -> tuple[str | None, str]:
    from models.layers import build_activation_model, find_last_conv_layer

    try:
        path = find_last_conv_layer(keras_model, requested, modality=modality)
        build_activation_model(keras_model, path)
    except ValueError as exc:
        if requested:
            raise ModelError(f"the Grad-CAM layer {requested!r} cannot be used: {_sentence(exc)}") from None
        return None, f"none: {_sentence(exc)} (SHAP and LIME still apply)"
    return path, "given" if requested else "the last convolution layer"


def _sentence(exc: Exception) -> str:
    text = str(exc).strip()
    return text if text.endswith(".") else text + "."


# --------------------------------------------------------------------------- main


def inspect_model(
    keras_model: Any,
    model_path: Path | str | None = None,
    *,
    classes: Sequence[str] | Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> InferredSpec:
    """Infer what the model needs. `overrides` may hold: classes, rescales_inputs, height,
    width, sequence_length, gradcam_layer (answers to earlier questions)."""
    overrides = dict(overrides or {})
    if classes is None and overrides.get("classes") is not None:
        classes = overrides["classes"]
    modality = infer_modality(keras_model)
    n_classes = output_count(keras_model)
    if modality is Modality.IMAGE:
        spec, missing, sources = _image_input(keras_model, overrides)
        notes: list[str] = []
    else:
        spec, notes, sources = _text_input(keras_model, overrides)
        missing = []
    sources = {"modality": "the model's input type and shape", **sources}
    found, classes_source = _find_classes(classes, Path(model_path) if model_path else None, n_classes)
    if found is None:
        missing.insert(0, "classes")
    else:
        sources["classes"] = classes_source or "given"
    layer, layer_source = _gradcam_layer(keras_model, modality, overrides.get("gradcam_layer") or None)
    sources["gradcam_layer"] = layer_source
    return InferredSpec(
        modality=modality,
        input=spec,
        n_classes=n_classes,
        classes=found,
        gradcam_layer=layer,
        missing=tuple(missing),
        sources=sources,
        notes=tuple(notes),
    )


_SLUG = re.compile(r"[^a-z0-9_-]+")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def suggest_name(path: Path | str) -> str:
    """A model or dataset name made from a file name: lowercase letters, digits, - and _."""
    stem = Path(str(path)).stem
    if stem.endswith(".classes"):
        stem = stem[: -len(".classes")]
    slug = _SLUG.sub("-", stem.lower()).strip("-_")[:48].strip("-_")
    return slug or "model"


def check_name(name: str, what: str = "model", error: type[Exception] = ModelError) -> str:
    name = str(name).strip()
    if not NAME_PATTERN.match(name):
        raise error(
            f"{what} names use lowercase letters, digits, '-' and '_' (at most 48, starting with a letter or digit); "
            f"choose another name than {name[:60]!r}."
        )
    return name
