"""Training recipes for the sample models and for fine-tuning new versions.

Image models: a small CNN trained from scratch on digits; shapes models reuse the digits
backbone with the classic transfer recipe (frozen base + new head, then the top of the base
unfrozen at a low learning rate, early stopping on validation). Text: a Conv1D classifier
over raw strings with the vocabulary inside the model.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from foundation.dataset import Dataset
from foundation.types import Modality
from models import architectures
from models.manifest import InputSpec
from models.metrics import classification_metrics
from models.model_io import ModelIO, legacy_io


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 5
    seed: int = 0
    augment: bool = True
    # Pixels arrive as 0..255; models that expect 0..1 (no Rescaling layer of their own) get 1/255.
    pixel_scale: float = 1.0
    # Transfer / fine-tuning recipe.
    head_epochs: int = 10
    finetune_epochs: int = 25
    finetune_learning_rate: float = 2e-4
    unfreeze_top: int = 2
    # Tiny runs for tests: use only the first `limit` training examples.
    limit: int | None = None
    image_filters: tuple[int, ...] = architectures.ImageArchitecture().filters
    text_max_tokens: int = architectures.TextArchitecture().max_tokens


QUICK_CONFIG = TrainConfig(
    epochs=2, head_epochs=1, finetune_epochs=1, patience=1, limit=96, image_filters=(4, 8), text_max_tokens=300
)


def _keras():
    import keras

    return keras


def as_model_input(dataset: Dataset, pixel_scale: float = 1.0, io: ModelIO | None = None) -> Any:
    """A dataset's inputs as the model takes them: `io` (a user model's preprocessing, grey
    channel or token ids) when given, else the sample models' convention scaled by `pixel_scale`."""
    if io is not None:
        if dataset.modality is Modality.TEXT:
            return io.tf_tensor(io.text_input(list(dataset.x)))
        return io.image_tensor(dataset.x)
    if dataset.modality is Modality.TEXT:
        import tensorflow as tf

        return tf.constant(np.asarray(list(dataset.x), dtype=str).reshape(-1, 1))
    return np.asarray(dataset.x, dtype=np.float32) * np.float32(pixel_scale)


def _io(dataset: Dataset, config: TrainConfig, io: ModelIO | None) -> ModelIO:
    return io if io is not None else legacy_io(dataset.modality, config.pixel_scale)


def _limited(dataset: Dataset, limit: int | None) -> Dataset:
    if not limit or limit >= len(dataset):
        return dataset
    x = dataset.x[:limit] if dataset.modality is Modality.IMAGE else list(dataset.x)[:limit]
    return replace(dataset, ids=dataset.ids[:limit], x=x, y=dataset.y[:limit], masks=None, cue_masks=None, rationales=None)


def _augmenter(seed: int):
    """Small shifts only: flips and rotations would change what some classes mean (6 vs 9)."""
    keras = _keras()
    shift = keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed)
    return lambda x: shift(x, training=True)


def _fit(
    model: Any,
    train: Dataset,
    val: Dataset,
    *,
    epochs: int,
    learning_rate: float,
    config: TrainConfig,
    callbacks: Sequence[Any],
    augment: bool,
    io: ModelIO | None = None,
) -> Any:
    keras = _keras()
    # The loss follows the output: binary cross-entropy for one-unit heads, from_logits for logits.
    model_io = _io(train, config, io)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=model_io.loss(),
        metrics=[model_io.accuracy_metric()],
    )
    x_train = as_model_input(train, config.pixel_scale, io)
    y_train, y_val = model_io.targets(train.y), model_io.targets(val.y)
    if augment and train.modality is Modality.IMAGE:
        augmenter = _augmenter(config.seed)
        import tensorflow as tf

        data = (
            tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .shuffle(len(train), seed=config.seed, reshuffle_each_iteration=True)
            .batch(config.batch_size)
            .map(lambda x, y: (augmenter(x), y))
            .prefetch(2)
        )
        fit_args: dict[str, Any] = {"x": data}
    else:
        fit_args = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True}
    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=config.patience, restore_best_weights=True, mode="max"
    )
    return model.fit(
        **fit_args,
        validation_data=(as_model_input(val, config.pixel_scale, io), y_val),
        epochs=epochs,
        callbacks=[stop, *callbacks],
        verbose=0,
    )


def evaluate(
    model: Any, dataset: Dataset, batch_size: int = 256, pixel_scale: float = 1.0, io: ModelIO | None = None
) -> dict[str, Any]:
    raw = np.asarray(model.predict(as_model_input(dataset, pixel_scale, io), batch_size=batch_size, verbose=0))
    probabilities = raw if io is None else io.probabilities(raw)
    return classification_metrics(dataset.y, probabilities.argmax(axis=1), dataset.classes)


def train_image_from_scratch(
    train: Dataset, val: Dataset, config: TrainConfig, callbacks: Sequence[Any] = ()
) -> Any:
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    arch = architectures.ImageArchitecture(filters=config.image_filters)
    model = architectures.build_image_classifier(len(train.classes), arch)
    _fit(model, train, val, epochs=config.epochs, learning_rate=config.learning_rate, config=config,
         callbacks=callbacks, augment=config.augment)
    return model



def _flatten(layers: list[Any]) -> list[Any]:
    """Weighted layers, looking inside nested models (e.g. the backbone)."""
    flat: list[Any] = []
    for layer in layers:
        inner = getattr(layer, "layers", None)
        flat.extend(_flatten(inner) if inner else [layer] if layer.weights else [])
    return flat


def _set_trainable(model: Any, trainable_layers: list[Any]) -> None:
    for layer in model.layers:
        layer.trainable = True  # in Keras 3 this also reaches the layers of nested models
    for layer in _flatten(model.layers):
        layer.trainable = any(layer is t for t in trainable_layers)


def fine_tune(
    model: Any, train: Dataset, val: Dataset, config: TrainConfig, callbacks: Sequence[Any] = (),
    io: ModelIO | None = None,
) -> Any:
    """Frozen base + head first, then the top of the base at a low learning rate.

    `io` (a registered model's `LoadedModel.io`) says how the data becomes its input and
    which loss its output takes; without it the sample models' conventions apply."""
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    # The head is the last weighted layer (the classifier); everything below it is the base.
    # This holds for the sample models and for any user model ending in a Dense classifier.
    weighted = _flatten(model.layers)
    head = weighted[-1:]
    base = [layer for layer in weighted[:-1] if layer.name != "caffe_preprocess"]
    _set_trainable(model, head)
    _fit(model, train, val, epochs=config.head_epochs, learning_rate=config.learning_rate, config=config,
         callbacks=callbacks, augment=config.augment, io=io)
    top = base[-config.unfreeze_top:] if config.unfreeze_top > 0 else []
    if top and config.finetune_epochs > 0:
        _set_trainable(model, head + top)
        _fit(model, train, val, epochs=config.finetune_epochs, learning_rate=config.finetune_learning_rate,
             config=config, callbacks=callbacks, augment=config.augment, io=io)
    # Leave the saved model trainable for later fine-tuning; fixed preprocessing stays frozen.
    _set_trainable(model, [layer for layer in _flatten(model.layers) if layer.name != "caffe_preprocess"])
    return model


def transfer_image_model(
    backbone: Any,
    preprocessing: list[Any],
    train: Dataset,
    val: Dataset,
    config: TrainConfig,
    callbacks: Sequence[Any] = (),
) -> Any:
    shape = (architectures.IMAGE_SIZE, architectures.IMAGE_SIZE, 3)
    model = architectures.attach_head(
        backbone, len(train.classes), input_shape=shape, preprocessing=preprocessing,
        dropout=architectures.ImageArchitecture().dropout,
    )
    return fine_tune(model, train, val, config, callbacks)


def digits_backbone(digits_model_path: Path) -> tuple[Any, list[Any]]:
    """The backbone of a trained digits model, for transfer to new image tasks."""
    keras = _keras()
    from models.safe_load import load_keras_model

    digits = load_keras_model(digits_model_path)
    backbone = digits.get_layer(architectures.BACKBONE_NAME)
    return backbone, [keras.layers.Rescaling(1.0 / 255, name="rescale")]


def train_text(train: Dataset, val: Dataset, config: TrainConfig, callbacks: Sequence[Any] = ()) -> Any:
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    arch = architectures.TextArchitecture(max_tokens=config.text_max_tokens)
    vocabulary = architectures.build_vocabulary(list(train.x), arch.max_tokens)
    model = architectures.build_text_classifier(vocabulary, len(train.classes), arch)
    _fit(model, train, val, epochs=config.epochs, learning_rate=config.learning_rate, config=config,
         callbacks=callbacks, augment=False)
    return model


def input_spec(modality: Modality, model: Any) -> InputSpec:
    """The manifest's input entry for a model built by these recipes."""
    if modality is Modality.TEXT:
        vectorize = model.get_layer("vectorize")
        return InputSpec(
            type="text",
            sequence_length=int(vectorize.get_config()["output_sequence_length"]),
            tokenization="lowercase, strip punctuation, split on whitespace",
        )
    return InputSpec(
        type="image",
        height=architectures.IMAGE_SIZE,
        width=architectures.IMAGE_SIZE,
        channels=3,
        rescales_inputs=True,
        value_range=(0, 255),
    )


def config_dict(config: TrainConfig) -> dict[str, Any]:
    data = asdict(config)
    data["image_filters"] = list(config.image_filters)
    return data


ProgressCallback = Callable[[dict[str, Any]], None]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start
