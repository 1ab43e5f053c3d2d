"""Recipes that produce the shipped sample models (`workbench train`)."""
from __future__ import annotations

import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from foundation.types import Modality
from models import training
from models.manifest import Lineage, Manifest, Metrics, Training
from models.store import MODEL_FILE, now_iso, save_model_folder
from workbench import datasets, first_page

SAMPLE_MODELS = {
    "digits": {"dataset": "digits", "recipe": "scratch"},
    "shapes": {"dataset": "shapes", "recipe": "transfer"},
    "shapes-shortcut": {"dataset": "shapes-shortcut", "recipe": "transfer"},
    "headlines": {"dataset": "headlines", "recipe": "text"},
}
# Order matters: the shapes models fine-tune the digits backbone.
TRAIN_ORDER = ("digits", "shapes", "shapes-shortcut", "headlines")

INTENDED_USE = {
    "digits": "Recognise 8x8 handwritten digits (scikit-learn's bundled set) upscaled to 64x64; teaching and demos.",
    "shapes": "Classify simple generated shapes on varied backgrounds; has ground-truth masks for measuring explanations.",
    "shapes-shortcut": "A deliberately flawed model: trained where a corner mark gives away one class (shortcut lesson).",
    "headlines": "Sentiment of short generated financial headlines (negative/neutral/positive); teaching and demos.",
}


NOISY_SUFFIX = "-noisy"


def noisy_twin(name: str) -> str:
    """The name of a sample model's twin trained on the flipped-label copy of its data."""
    return f"{name}{NOISY_SUFFIX}"


def _build(name: str, config: training.TrainConfig, out_root: Path, backbone_path: Path | None,
           callbacks: list[Any], split: str = "train") -> tuple[Any, dict[str, Any]]:
    import sample_data

    spec = SAMPLE_MODELS[name]
    dataset_name = spec["dataset"]
    train = training._limited(sample_data.load(dataset_name, split), config.limit)
    val = sample_data.load(dataset_name, "val")
    if spec["recipe"] == "scratch":
        model = training.train_image_from_scratch(train, val, config, callbacks)
    elif spec["recipe"] == "transfer":
        source = backbone_path or (out_root / "digits" / "model.keras")
        if not source.is_file():
            raise FileNotFoundError(f"{source} not found: train the digits model first (workbench train digits)")
        backbone, preprocessing = training.digits_backbone(source)
        model = training.transfer_image_model(backbone, preprocessing, train, val, config, callbacks)
    else:
        model = training.train_text(train, val, config, callbacks)
    return model, {"train": train, "val": val, "dataset": dataset_name, "recipe": spec["recipe"]}


def train_sample(
    name: str,
    out_root: Path,
    config: training.TrainConfig = training.TrainConfig(),
    *,
    backbone_path: Path | None = None,
    callbacks: list[Any] | None = None,
    log: Callable[[str], None] = lambda _: None,
    noisy: bool = False,
) -> Manifest:
    """Train one sample model, evaluate on the clean test split, write model + manifest.

    noisy: train on `train_noisy` (about 5 % of labels flipped) instead, as a user's own model
    learns from labels nobody has reviewed yet, and write it as `<name>-noisy`. The review
    queue of the sample data is ranked with these twins (see `review_model_name`): a model
    that learned the clean labels of the very examples it audits finds the flips too easily.
    Returns the manifest as written (with the file's sha256); `to_dict()` is the JSON on disk.
    """
    import keras
    import tensorflow as tf

    import sample_data

    if name not in SAMPLE_MODELS:
        raise KeyError(f"unknown sample model {name!r}; choose one of {', '.join(SAMPLE_MODELS)}")
    if config == training.TrainConfig():
        config = recipe_config(name)
    start = time.perf_counter()
    log(f"training {name} ...")
    split = datasets.NOISY_SPLIT if noisy else datasets.TRAIN_SPLIT
    model, info = _build(name, config, out_root, backbone_path, list(callbacks or []), split)
    test = sample_data.load(info["dataset"], "test")
    modality = sample_data.modality(info["dataset"])
    vectorize = model.get_layer("vectorize") if modality is Modality.TEXT else None
    measured = {"test": training.evaluate(model, test), "val": training.evaluate(model, info["val"])}
    seconds = round(time.perf_counter() - start, 1)  # training and the clean test/val evaluation
    if name == "shapes-shortcut":
        measured["test_nocue"] = training.evaluate(model, sample_data.load(info["dataset"], "test_nocue"))
    written_name = noisy_twin(name) if noisy else name
    manifest = Manifest(
        name=written_name,
        version="v1",
        modality=modality,
        classes=tuple(test.classes),
        input=training.input_spec(modality, model),
        dataset=info["dataset"],
        lineage=Lineage(parent=None, data_hash=sample_data.dataset_hash(info["train"]), labels_changed=0,
                        train_split=split if noisy else None),
        recipe=info["recipe"],
        intended_use=_noisy_use(name) if noisy else INTENDED_USE[name],
        metrics=Metrics.from_dict(measured),
        training=Training(config=training.config_dict(config), seconds=seconds,
                          command=f"workbench train {name}" + (" --noisy" if noisy else "")),
        created_at=now_iso(),
        created_by="workbench train",
        software={"keras": keras.__version__, "tensorflow": tf.__version__, "python": platform.python_version()},
        vocabulary_size=None if vectorize is None else len(vectorize.get_vocabulary()),
        gradcam_layer=None if vectorize is not None else "backbone/" + model.get_layer("backbone").layers[-1].name,
    )
    folder = out_root / written_name
    folder.mkdir(parents=True, exist_ok=True)
    if vectorize is not None:
        from foundation.atomic import write_json_atomic

        write_json_atomic(folder / "vocabulary.json", vectorize.get_vocabulary())
    manifest = save_model_folder(model, manifest, folder)
    log(f"{written_name}: test accuracy {manifest.metrics.test.accuracy:.4f} ({manifest.training.seconds} s)")
    _store_first_page(manifest, folder, log)
    return manifest


def _store_first_page(manifest: Manifest, folder: Path, log: Callable[[str], None]) -> None:
    """The Explain image page's first map of the model as written (read back from its file, as the app
    reads it), stored beside it, so that the app's first start shows it at once (workbench/first_page.py)."""
    from models.loaded import LoadedModel
    from models.safe_load import load_keras_model

    written = LoadedModel(name=manifest.name, version=manifest.version, manifest=manifest.to_dict(),
                          keras_model=load_keras_model(folder / (manifest.file or MODEL_FILE)))
    if first_page.store_with_model(written, folder) is not None:
        log(f"{manifest.name}: first page stored")


def _noisy_use(name: str) -> str:
    dataset = SAMPLE_MODELS[name]["dataset"]
    return (f"The {name} recipe trained on the train_noisy split of {dataset} (about 5 % of labels flipped), "
            "as your own model learns from labels nobody has reviewed yet. The Review page and "
            f"`workbench audit` rank the labels of {dataset} with it.")


def review_model_name(model_name: str, split: str, available: Sequence[str]) -> str:
    """The model whose features should rank `split` of a sample model's data.

    The shipped sample models learned from the clean labels of `train`, which are the very
    examples `train_noisy` holds; their features already separate the true classes, so they
    find the flipped labels too easily. When the model's noisy twin is in `available`, the
    queue is ranked with the twin instead: the honest setting of a model trained on the labels
    under review. Any other model (a user's, a retrained version, a twin) is used as given.
    """
    twin = noisy_twin(model_name)
    if split == datasets.NOISY_SPLIT and model_name in SAMPLE_MODELS and twin in available:
        return twin
    return model_name


def recipe_config(name: str) -> training.TrainConfig:
    """The full training configuration of a sample model.

    Transfer from digits to shapes: the new head trains for a few epochs on the frozen base;
    then the top three of the four conv blocks are unfrozen. Measured here: with only the
    top block unfrozen (at 2e-4) the model stayed near chance (test accuracy 0.38), because grey
    digits features do not separate shapes on colourful backgrounds; it needs the deeper
    blocks to adapt, and takes ~8 epochs at 1e-3 to leave the plateau.
    """
    if SAMPLE_MODELS[name]["recipe"] == "transfer":
        # The shortcut data is harder (smaller, fainter shapes, more clutter) and has half the
        # examples: it needs longer to leave the plateau (it stopped at 0.49 with patience 8).
        patience, epochs = (15, 60) if name == "shapes-shortcut" else (8, 40)
        return replace(training.TrainConfig(), head_epochs=3, unfreeze_top=6, finetune_learning_rate=1e-3,
                       finetune_epochs=epochs, patience=patience)
    return training.TrainConfig()


def quick_config() -> training.TrainConfig:
    return replace(training.QUICK_CONFIG)
