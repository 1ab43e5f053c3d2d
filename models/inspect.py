"""Work out what a user's Keras model needs, and say plainly what could not be worked out.

`inspect_model(keras_model, model_path)` reads the model's own structure:

* modality: a string input or an integer (token-id) input of rank 2 is a text model; a 4-D
  float input (N x H x W x C) an image model;
* output kind (`models.model_io.OUTPUT_KINDS`): K-way softmax, K-way logits (a last Dense
  without activation), or one unit with a sigmoid or none (a binary model: two classes);
* image input: height, width and channels (1: grey models are fed luminance; 3: RGB), and
  the preprocessing preset (`models.model_io.PRESETS`): "inside" when a Rescaling or
  Normalization layer comes before the first layer with weights (looking inside nested
  models), else the family's convention when a nested Keras applications base names its
  family (resnet50: caffe; mobilenetv2: -1..1; densenet: torch); asked otherwise;
* text input: the TextVectorization layer's output_sequence_length; for token-id models the
  vocabulary (asked: a JSON list or one token per line), its out-of-vocabulary id (found by
  the token's name) and the sequence length (fixed in the input's shape, or not truncated);
* class names: given by the caller (a list or a JSON file), else `<stem>.classes.json` or
  `classes.json` beside the model file; the count must match the model's outputs;
* the Grad-CAM layer: the last convolution, nested models included
  (`models.layers.find_last_conv_layer`).

What cannot be inferred is listed in `InferredSpec.missing` (with a question for the user
in `QUESTIONS`) and can be supplied in `overrides`; it is then saved in the manifest, so it
is asked once. Models the workbench cannot drive (several inputs or outputs, multi-label
sigmoid heads, 2- or 4-channel images) raise `ModelError` saying why in one sentence.
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
from models import model_io

MAX_CLASSES_FILE_BYTES = 1024 * 1024
MAX_CLASS_NAME_CHARS = 100
# Characters that would let a class name carry a Markdown link, image or HTML tag.
MARKUP_CHARACTERS = frozenset("[]<>`")
# Keras' TextVectorization defaults, which models.loaded.tokenize mirrors.
_TOKENIZER = {"standardize": "lower_and_strip_punctuation", "split": "whitespace"}

QUESTIONS = {
    "classes": "the class names, one per model output, in output order",
    "preprocessing": "how the model expects its pixels (its preprocessing)",
    "input_size": "the image height and width the model expects",
    "vocabulary": "the vocabulary of the token-id model (a JSON list or one token per line; index = token id)",
}
MAX_VOCABULARY_FILE_BYTES = 16 * 1024 * 1024
MAX_VOCABULARY_TOKENS = 1_000_000


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
    output_kind: str = model_io.SOFTMAX

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
        if self.output_kind != model_io.SOFTMAX:
            fields["output"] = {"kind": self.output_kind}
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
        if len(shape) == 2:
            return Modality.TEXT  # token ids, one row per text
        raise ModelError(
            f"the model takes {dtype} inputs of shape {shape}; token-id text models take N x sequence-length ids, "
            "so the workbench cannot feed this input."
        )
    if dtype.startswith("float") or dtype.startswith("bfloat"):
        if len(shape) == 4:
            return Modality.IMAGE
        raise ModelError(
            f"the model's input has shape {shape}; image models take N x height x width x channels "
            "and text models strings or token ids, so the workbench cannot feed this input."
        )
    raise ModelError(f"the model's input type {dtype} is not supported; use float images or string text.")


# ------------------------------------------------------------------------ outputs


def output_kind(keras_model: Any) -> tuple[str, int]:
    """(kind, number of classes) from the output's shape and the last layer's activation."""
    tensor = _single(getattr(keras_model, "outputs", None), "output")
    shape = _shape(tensor)
    if len(shape) != 2 or shape[-1] is None or shape[-1] < 1:
        raise ModelError(
            f"the model's output has shape {shape}; the workbench explains classifiers with one score per class "
            "(N x K), or one unit for two classes, so it cannot use this output."
        )
    units = int(shape[-1])
    activation = output_activation(keras_model)
    if units == 1:
        if activation == "sigmoid":
            return model_io.SIGMOID, 2
        if activation in ("linear", None):
            return model_io.BINARY_LOGIT, 2
        raise ModelError(
            f"the model's one output unit has a {activation} activation; a binary classifier's unit is a sigmoid "
            "or a plain logit, so the workbench cannot read it as a probability."
        )
    if activation == "softmax":
        return model_io.SOFTMAX, units
    if activation in ("linear", None):
        return model_io.LOGITS, units
    if activation == "sigmoid":
        raise ModelError(
            f"the model ends in {units} independent sigmoid units (a multi-label model); the workbench explains "
            "single-label classifiers whose classes compete, so it cannot use this model."
        )
    raise ModelError(
        f"the model's last layer has a {activation} activation; the workbench needs class probabilities (softmax), "
        "logits (no activation) or one sigmoid unit."
    )


def output_activation(keras_model: Any) -> str | None:
    """The activation the output layer applies: "softmax", "sigmoid", "linear", ... (None when unknown)."""
    import keras

    layer = _output_layer(keras_model)
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if not hasattr(layer, "get_config"):
        return None
    activation = layer.get_config().get("activation")
    if isinstance(activation, dict):  # a serialised activation object
        activation = activation.get("config", {}).get("name") or activation.get("class_name")
    return None if activation is None else str(activation)


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


# Keras applications families by the name their constructor gives the base model
# (keras.applications.ResNet50 -> "resnet50", MobileNetV2 -> "mobilenetv2_1.00_224"), and
# the preprocess_input convention of each. Families that rescale inside (EfficientNet,
# ConvNeXt, RegNet) are found by their own Rescaling/Normalization layers first.
APPLICATION_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"resnet\d+v2(?![a-z0-9])", model_io.MINUS_ONE_ONE),
    (r"resnet\d+(?![a-z0-9])", model_io.CAFFE),
    (r"vgg1[69](?![a-z0-9])", model_io.CAFFE),
    (r"mobilenet", model_io.MINUS_ONE_ONE),
    (r"inception", model_io.MINUS_ONE_ONE),
    (r"xception", model_io.MINUS_ONE_ONE),
    (r"nasnet", model_io.MINUS_ONE_ONE),
    (r"densenet", model_io.TORCH),
)


def application_family(keras_model: Any) -> tuple[str, str] | None:
    """(base name, preset) of the first nested Keras applications base, by its name."""
    for layer in iter_layers(keras_model):
        if not getattr(layer, "layers", None):
            continue
        name = str(layer.name).lower()
        for pattern, preset in APPLICATION_FAMILIES:
            if re.match(pattern, name):
                return layer.name, preset
    return None


def _preprocessing(
    keras_model: Any, overrides: Mapping[str, Any], channels: int
) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest preprocessing fields, how they were known), or (None, None) when it must be asked."""
    if overrides.get("preprocessing"):
        fields = model_io.settings_from_answers(overrides)
        model_io.Preprocessing(fields["preprocessing"], fields.get("mean"), fields.get("std"), channels)  # checks
        return fields, "given"
    if overrides.get("rescales_inputs") is not None:  # the older yes/no question
        preset = model_io.INSIDE if overrides["rescales_inputs"] else model_io.ZERO_ONE
        return {"preprocessing": preset}, "given"
    if rescales_itself(keras_model):
        return {"preprocessing": model_io.INSIDE}, "a Rescaling/Normalization layer near the input"
    family = application_family(keras_model)
    if family is not None and not (channels == 1 and family[1] in (model_io.CAFFE, model_io.TORCH)):
        return {"preprocessing": family[1]}, f"the nested Keras applications base {family[0]!r}"
    return None, None


_LEGACY_RANGE = {model_io.INSIDE: (True, [0, 255]), model_io.ZERO_255: (True, [0, 255]),
                 model_io.ZERO_ONE: (False, [0, 1]), model_io.MINUS_ONE_ONE: (None, [-1, 1])}


def _image_input(keras_model: Any, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    _, height, width, channels = _shape(keras_model.inputs[0])
    if channels not in (1, 3):
        raise ModelError(
            f"the model takes images with {channels} channel(s); the workbench feeds grey (1 channel) or "
            "RGB (3 channels) images, so it cannot feed this model."
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
    elif overrides.get("height") is not None or overrides.get("width") is not None:
        height, width = _positive_int(overrides.get("height"), "height"), _positive_int(overrides.get("width"), "width")
        sources["input_size"] = "given"
    else:
        missing.append("input_size")
    preprocessing, source = _preprocessing(keras_model, overrides, channels)
    spec: dict[str, Any] = {"type": "image", "height": height, "width": width, "channels": channels}
    if preprocessing is None:
        missing.append("preprocessing")
        spec["rescales_inputs"] = None
    else:
        sources["preprocessing"] = source or "given"
        spec.update(preprocessing)
        # Kept for readers of older manifests: whether the model takes 0-255 pixels, and their range.
        rescales, value_range = _LEGACY_RANGE.get(preprocessing["preprocessing"], (None, None))
        spec["rescales_inputs"] = rescales
        if value_range is not None:
            spec["value_range"] = value_range
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


def _text_input(keras_model: Any, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str], dict[str, str]]:
    """(input spec, notes, missing, sources) for a string-input or token-id text model."""
    if _is_token_id_model(keras_model):
        return _token_id_input(keras_model, overrides)
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
    return spec, notes, [], {"sequence_length": source}


def _is_token_id_model(keras_model: Any) -> bool:
    return not str(keras_model.inputs[0].dtype).startswith("string")


def _token_id_input(keras_model: Any, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str], dict[str, str]]:
    fixed = _shape(keras_model.inputs[0])[1]
    sources: dict[str, str] = {}
    if overrides.get("sequence_length"):
        length = _whole(overrides["sequence_length"], "sequence length", 1, 100_000)
        if fixed is not None and length != fixed:
            raise ModelError(f"the model's input is fixed at {fixed} token ids; leave the length out or give {fixed}.")
        sources["sequence_length"] = "given"
    elif fixed is not None:
        length = fixed
        sources["sequence_length"] = "the model's input shape"
    else:
        length = 0
        sources["sequence_length"] = "not fixed by the model: texts are not truncated"
    standardize = str(overrides.get("standardize") or "lower_and_strip_punctuation")
    if standardize not in model_io.STANDARDIZE_RULES:
        raise ModelError(f"unknown standardisation {standardize!r}; choose one of {', '.join(model_io.STANDARDIZE_RULES)}.")
    padding = str(overrides.get("padding") or "post")
    if padding not in model_io.PADDING_SIDES:
        raise ModelError(f"padding must be post or pre, not {padding!r}.")
    spec: dict[str, Any] = {
        "type": "text", "encoding": "token_ids", "sequence_length": length, "padding": padding,
        "standardize": standardize, "tokenization": f"{standardize.replace('_', ' ')}, split on whitespace",
    }
    sources["tokenization"] = "given" if overrides.get("standardize") else "Keras TextVectorization's default rule"
    missing: list[str] = []
    vocabulary = overrides.get("vocabulary")
    if vocabulary is None:
        missing.append("vocabulary")
        return spec, [], missing, sources
    tokens = read_vocabulary_file(Path(vocabulary)) if isinstance(vocabulary, (str, Path)) else _check_vocabulary(list(vocabulary), "the vocabulary given")
    spec["vocabulary"] = tokens
    sources["vocabulary"] = Path(vocabulary).name if isinstance(vocabulary, (str, Path)) else "given"
    if overrides.get("oov_id") is not None:
        oov = _whole(overrides["oov_id"], "out-of-vocabulary id", 0, len(tokens) - 1)
        sources["oov_id"] = "given"
    else:
        oov = model_io.find_oov_id(tokens)
        sources["oov_id"] = f"the vocabulary's {tokens[oov]!r} token" if oov is not None else "none in the vocabulary: unknown words are skipped"
    spec["oov_id"] = oov
    embedding_rows = _embedding_rows(keras_model)
    if embedding_rows is not None and len(tokens) > embedding_rows:
        raise ModelError(
            f"the vocabulary has {len(tokens)} tokens but the model's Embedding has only {embedding_rows} rows; "
            "give the vocabulary the model was trained with."
        )
    return spec, [], missing, sources


def _embedding_rows(keras_model: Any) -> int | None:
    import keras

    layer = next((l for l in iter_layers(keras_model) if isinstance(l, keras.layers.Embedding)), None)
    return None if layer is None else int(layer.input_dim)


def _whole(value: Any, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ModelError(f"the {what} must be a whole number, got {value!r}.") from None
    if not low <= number <= high:
        raise ModelError(f"the {what} must be between {low} and {high}, got {number}.")
    return number


def read_vocabulary_file(path: Path) -> list[str]:
    """A vocabulary file: a JSON list of tokens, or one token per line (index = id)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_VOCABULARY_FILE_BYTES:
            raise ModelError(f"{path.name} is larger than {MAX_VOCABULARY_FILE_BYTES // 2**20} MB; a vocabulary is a list of tokens.")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path.name} could not be read ({exc.strerror or exc}); check the path.") from None
    return parse_vocabulary(data, path.name)


def parse_vocabulary(data: bytes, where: str) -> list[str]:
    """Vocabulary bytes (JSON list or one token per line, UTF-8) -> the token list, checked."""
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelError(f"{where} is not UTF-8 text; save the vocabulary as UTF-8.") from None
    tokens: Any = None
    if text.strip().startswith("[") and text.strip().endswith("]"):
        try:
            tokens = json.loads(text)
        except ValueError:
            tokens = None  # e.g. one token per line, the first being "[UNK]"
    if tokens is None:
        tokens = text.split("\n")
        tokens = [t[:-1] if t.endswith("\r") else t for t in tokens]
        if tokens and tokens[-1] == "":
            tokens = tokens[:-1]  # the file's final newline
    return _check_vocabulary(tokens, where)


def _check_vocabulary(tokens: list[Any], where: str) -> list[str]:
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ModelError(f"{where} must be a list of tokens (texts), index = token id.")
    if not tokens:
        raise ModelError(f"{where} is empty; give the model's vocabulary, one token per id.")
    if len(tokens) > MAX_VOCABULARY_TOKENS:
        raise ModelError(f"{where} has more than {MAX_VOCABULARY_TOKENS:,} tokens; that is not a word vocabulary.")
    return tokens


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
    """Infer what the model needs. `overrides` may hold answers to earlier questions: classes,
    preprocessing (+ mean, std for custom; or the older rescales_inputs yes/no), height, width,
    gradcam_layer, and for token-id text models vocabulary (a path or a list), oov_id,
    sequence_length, padding, standardize."""
    overrides = dict(overrides or {})
    if classes is None and overrides.get("classes") is not None:
        classes = overrides["classes"]
    modality = infer_modality(keras_model)
    kind, n_classes = output_kind(keras_model)
    if modality is Modality.IMAGE:
        spec, missing, sources = _image_input(keras_model, overrides)
        notes: list[str] = []
    else:
        spec, notes, missing, sources = _text_input(keras_model, overrides)
    sources = {"modality": "the model's input type and shape",
               "output": f"the output layer: {model_io.OUTPUT_KINDS[kind]}", **sources}
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
        output_kind=kind,
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
