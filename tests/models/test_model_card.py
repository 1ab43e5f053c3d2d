"""The model card says what a registered model's output is and how its inputs are made,
from manifests written by real registrations (a grey binary-logit convnet, a token-id BiLSTM)."""
from __future__ import annotations

import html

import keras
import pytest

from models import model_card
from tests.models import tutorial_models as tm
from workbench import user_models


def _plain(card: str) -> str:
    """The card as a reader sees it: Markdown escapes removed."""
    return html.unescape(card.replace("\\", ""))


def _grey_binary_logit() -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((20, 24, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1),
    ])


def test_card_of_a_grey_binary_logit_model_with_assumed_preprocessing(workspace, tmp_path):
    path = tmp_path / "grey.keras"
    _grey_binary_logit().save(path)
    manifest = user_models.register(path, classes=["ok", "*defect* $x$"], name="grey")
    card = model_card.model_card(manifest)
    text = _plain(card)
    assert "**Output**: one logit unit — the workbench applies the sigmoid for the second class " \
           "(detected from the output layer)" in text
    assert "**Input**: image, 24 x 20 pixels, grey (1 channel" in text
    assert "**Preprocessing**: 0-1 (pixels divided by 255) — **assumed** (nothing in the model tells)" in text
    assert "**Note**: The model does not say how it expects its pixels, so 0-1 was assumed" in text
    assert "\\*defect\\* \\$x\\$" in card and "*defect*" not in card


def test_card_of_a_detected_preprocessing_and_a_given_one(workspace, tmp_path):
    path = tm.save("mobilenet_transfer", tmp_path)
    text = _plain(model_card.model_card(user_models.register(path)))
    assert "**Output**: 3-way softmax (probabilities) (detected from the output layer)" in text
    assert "**Input**: image, 32 x 32 pixels, RGB (3 channels) (known from the model's input layer)" in text
    assert "**Preprocessing**: -1 to 1 (Keras 'tf' mode" in text
    assert "(known from the nested Keras applications base 'mobilenetv2" in text

    path = tmp_path / "grey2.keras"
    _grey_binary_logit().save(path)
    manifest = user_models.register(path, classes=["a", "b"], name="grey-custom", overrides={
        "preprocessing": "custom", "mean": [33.0], "std": [76.5]})
    text = _plain(model_card.model_card(manifest))
    assert "**Preprocessing**: custom: (pixel - [33.0]) / [76.5] (given when it was registered)" in text


def test_card_of_a_token_id_model(workspace, tmp_path):
    path = tm.save("token_id_bilstm", tmp_path)
    manifest = user_models.register(path, overrides={"vocabulary": str(tmp_path / "token_id_bilstm.vocab.txt"),
                                                     "padding": "pre"})
    text = _plain(model_card.model_card(manifest))
    assert "**Output**: one sigmoid unit — the probability of the second class" in text
    assert "**Input**: text as token ids, not truncated, padding pre\n" in text
    assert (f"**Vocabulary**: {len(tm.VOCABULARY)} tokens outside the model (known from token_id_bilstm.vocab.txt); "
            "out-of-vocabulary id 1 ([UNK]) (known from the vocabulary's '[UNK]' token)") in text


@pytest.mark.parametrize("name", ["headlines", "digits"])
def test_card_of_a_shipped_model_reads_its_older_manifest(name):
    from models import store

    if name not in store.model_names():
        pytest.skip(f"needs the shipped {name} model")
    text = _plain(model_card.model_card(store.manifest(name)))
    assert "**Output**: " in text and "-way softmax (probabilities)" in text and "**Input**: " in text
