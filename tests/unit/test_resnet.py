"""The ResNet builder: every depth, standard parameter counts, stable names, layouts."""

from __future__ import annotations

import numpy as np
import pytest

from gesturenet_lib.families.resnet_vanilla.network import (
    ARCHITECTURES,
    build_resnet,
    counted_layers,
)
from gesturenet_lib.specs.experiment import Model


@pytest.mark.parametrize("depth", sorted(ARCHITECTURES))
def test_every_depth_builds_and_counts_its_layers(depth):
    assert counted_layers(ARCHITECTURES[depth]) == depth
    model = build_resnet(Model(num_layers=depth, image_height=32, image_width=32), 6)
    assert model.output_shape == (None, 6)
    convs = [layer for layer in model.layers
             if layer.__class__.__name__ == "Conv2D" and "shortcut" not in layer.name]
    assert len(convs) + 1 == depth  # + the classifier


# Trainable parameters of torchvision's resnet18/50 without the 1000-class head.
@pytest.mark.parametrize("depth,body", [(18, 11_176_512), (50, 23_508_032)])
def test_parameter_counts_match_the_standard_resnets(depth, body):
    model = build_resnet(Model(num_layers=depth, image_height=64, image_width=64), 6)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    head = (512 if depth == 18 else 2048) * 6 + 6
    assert trainable - head == body


def test_layer_names_are_stable():
    names = [layer.name for layer in build_resnet(Model(num_layers=18), 6).layers]
    assert names[:3] == ["input_1", "to_channels_last", "conv1"]
    for expected in ("bn_conv1", "block_1a_conv_1", "block_2a_shortcut", "block_4b_relu",
                     "avg_pool", "predictions_dense", "predictions"):
        assert expected in names
    assert names == [layer.name for layer in build_resnet(Model(num_layers=18), 6).layers]


def test_gray_input_has_one_channel():
    model = build_resnet(Model(num_layers=10, gray_scale_input=True, image_height=48,
                               image_width=64), 3)
    assert model.input_shape == (None, 1, 48, 64)


def test_both_data_formats_give_the_same_outputs_for_the_same_weights():
    first = build_resnet(Model(num_layers=10, data_format="channels_first", image_height=32,
                               image_width=32), 4)
    last = build_resnet(Model(num_layers=10, data_format="channels_last", image_height=32,
                              image_width=32), 4)
    last.set_weights(first.get_weights())
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(first.predict(x.transpose(0, 3, 1, 2), verbose=0),
                               last.predict(x, verbose=0), atol=1e-5)


def test_regularizer_type_and_no_batch_norm():
    model = build_resnet(Model(num_layers=6, use_batch_norm=False, kernel_regularizer_type="l1",
                               kernel_regularization_factor=0.01, image_height=32,
                               image_width=32), 2)
    assert not [layer for layer in model.layers if "BatchNormalization" in type(layer).__name__]
    conv = model.get_layer("conv1")
    assert conv.use_bias and type(conv.kernel_regularizer).__name__ == "L1"
