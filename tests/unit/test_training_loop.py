"""The training loop's loss weighting and data.json class weights."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from gesturenet_lib.data.dataset_file import read_dataset_file
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.training.data import read_class_weights
from gesturenet_lib.training.loop import run_stage


def _epoch_loss(class_weights):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 0, 1, 2, 0, 1], 3)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    results = []
    run_stage(model, tf.distribute.get_strategy(), ds, None, 2, 0, 4,
              "categorical_crossentropy", 0, 1, results.append, class_weights)
    return results[0].loss, x, y, model


def test_class_weights_scale_each_example_loss():
    plain, x, y, model = _epoch_loss(None)
    weighted, *_ = _epoch_loss([2.0, 0.0, 1.0])
    per_example = keras.losses.categorical_crossentropy(y, model(x)).numpy()
    expected = np.mean(per_example * np.array([2.0, 0.0, 1.0])[y.argmax(1)])
    assert plain == pytest.approx(float(np.mean(per_example)), rel=1e-4)
    assert weighted == pytest.approx(float(expected), rel=1e-4)


def test_class_weights_from_data_json(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"class_weights": {"b": 3}}))
    assert read_class_weights(read_dataset_file(str(path)), {"a": 0, "b": 1}) == [1.0, 3.0]
    path.write_text(json.dumps({}))
    assert read_class_weights(read_dataset_file(str(path)), {"a": 0}) is None
    path.write_text(json.dumps({"class_weights": {"zzz": 1}}))
    with pytest.raises(UserInputError, match="class_weights.zzz = 1"):
        read_class_weights(read_dataset_file(str(path)), {"a": 0})
