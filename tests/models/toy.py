"""A tiny image model and its manifest, for tests of the version store (fast to build and save)."""
import keras

MANIFEST = {
    "modality": "image",
    "classes": ["a", "b"],
    "input": {"height": 4, "width": 4, "channels": 3, "rescales_inputs": True},
}


def toy_model(seed: int = 0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(4, 4, 3))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
