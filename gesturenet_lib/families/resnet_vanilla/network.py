"""One ResNet builder where depth is data: blocks per stage and the block type.

Depths (``num_layers`` counts the stem convolution, every convolution in the blocks and the
classifier; shortcut projections are not counted, as in the ResNet paper):

| num_layers | block      | blocks per stage |
|-----------:|------------|------------------|
| 6          | basic      | 1, 1             |  (two stages: 1 + 2*2 + 1)
| 10         | basic      | 1, 1, 1, 1       |
| 12         | basic      | 1, 1, 2, 1       |  (1 + 5*2 + 1)
| 18         | basic      | 2, 2, 2, 2       |
| 26         | bottleneck | 2, 2, 2, 2       |  (1 + 8*3 + 1)
| 34         | basic      | 3, 4, 6, 3       |
| 50         | bottleneck | 3, 4, 6, 3       |
| 101        | bottleneck | 3, 4, 23, 3      |
| 152        | bottleneck | 3, 8, 36, 3      |

The model takes the declared ``data_format`` at its input (``channels_first``: N,C,H,W as TAO
and DeepStream expect) and, on CPU, computes in channels_last (faster in TensorFlow); the
transpose is the first layer, so every exported artefact keeps the declared layout. Layer names
are deterministic (``conv1``, ``block_2b_conv_1``, ``predictions``...): freezing the last N
layers, TensorRT layer mapping and the tests rely on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.models.regularizer import make_regularizer
from gesturenet_lib.specs.experiment import Model

BATCH_NORM_MOMENTUM = 0.9  # 0.99 lags far behind on small datasets (see DESIGN.md)
STAGE_FILTERS = (64, 128, 256, 512)


@dataclass(frozen=True)
class Architecture:
    block: str                      # "basic" or "bottleneck"
    blocks_per_stage: tuple[int, ...]


ARCHITECTURES = {
    6: Architecture("basic", (1, 1)),
    10: Architecture("basic", (1, 1, 1, 1)),
    12: Architecture("basic", (1, 1, 2, 1)),
    18: Architecture("basic", (2, 2, 2, 2)),
    26: Architecture("bottleneck", (2, 2, 2, 2)),
    34: Architecture("basic", (3, 4, 6, 3)),
    50: Architecture("bottleneck", (3, 4, 6, 3)),
    101: Architecture("bottleneck", (3, 4, 23, 3)),
    152: Architecture("bottleneck", (3, 8, 36, 3)),
}


def counted_layers(arch: Architecture) -> int:
    per_block = 2 if arch.block == "basic" else 3
    return 1 + per_block * sum(arch.blocks_per_stage) + 1


def preprocessing(spec: Model) -> Preprocessing:
    """The spec's input size, grey or RGB, in its declared layout; crops stretched to it as
    TAO's classifiers do unless the spec asks for letterbox."""
    return Preprocessing(spec.image_height, spec.image_width,
                         1 if spec.gray_scale_input else 3, spec.data_format,
                         fit=spec.input_fit or "stretch")


def input_shape(spec: Model) -> tuple[int, int, int]:
    """The input without the batch dimension, in the declared layout."""
    return preprocessing(spec).input_dims()


class _Blocks:
    """The ResNet's building blocks, with the spec's batch norm, regularizer and layout; the
    layer names are part of the model file (weights_init matches layers by name)."""

    def __init__(self, spec: Model, regularizer, compute_format: str):
        from keras import layers

        self.layers, self.spec, self.regularizer = layers, spec, regularizer
        self.compute_format = compute_format
        self.axis = -1 if compute_format == "channels_last" else 1

    def conv(self, x, filters, kernel, stride, name):
        return self.layers.Conv2D(filters, kernel, strides=stride, padding="same",
                                  use_bias=not self.spec.use_batch_norm,
                                  kernel_regularizer=self.regularizer,
                                  kernel_initializer="he_normal",
                                  data_format=self.compute_format, name=name)(x)

    def norm(self, x, name):
        if not self.spec.use_batch_norm:
            return x
        return self.layers.BatchNormalization(axis=self.axis, momentum=BATCH_NORM_MOMENTUM,
                                              name=name)(x)

    def relu(self, x, name):
        return self.layers.Activation("relu", name=name)(x)

    def shortcut(self, x, filters, stride, name):
        if stride == 1 and x.shape[self.axis] == filters:
            return x
        return self.norm(self.conv(x, filters, 1, stride, f"{name}_shortcut"),
                         f"{name}_shortcut_bn")

    def basic(self, x, filters, stride, name):
        y = self.relu(self.norm(self.conv(x, filters, 3, stride, f"{name}_conv_1"),
                                f"{name}_bn_1"), f"{name}_relu_1")
        y = self.norm(self.conv(y, filters, 3, 1, f"{name}_conv_2"), f"{name}_bn_2")
        y = self.layers.Add(name=f"{name}_add")([y, self.shortcut(x, filters, stride, name)])
        return self.relu(y, f"{name}_relu")

    def bottleneck(self, x, filters, stride, name):
        y = self.relu(self.norm(self.conv(x, filters, 1, 1, f"{name}_conv_1"),
                                f"{name}_bn_1"), f"{name}_relu_1")
        y = self.relu(self.norm(self.conv(y, filters, 3, stride, f"{name}_conv_2"),
                                f"{name}_bn_2"), f"{name}_relu_2")
        y = self.norm(self.conv(y, 4 * filters, 1, 1, f"{name}_conv_3"), f"{name}_bn_3")
        y = self.layers.Add(name=f"{name}_add")([y, self.shortcut(x, 4 * filters, stride,
                                                                  name)])
        return self.relu(y, f"{name}_relu")


def build_resnet(spec: Model, num_classes: int, compute_format: str = "channels_last"):
    """The classifier for ``spec``: softmax over ``num_classes``."""
    import keras
    from keras import layers

    arch = ARCHITECTURES[spec.num_layers]
    regularizer = make_regularizer(spec)
    blocks = _Blocks(spec, regularizer, compute_format)
    conv, norm = blocks.conv, blocks.norm
    block_fn = blocks.basic if arch.block == "basic" else blocks.bottleneck
    inputs = keras.Input(shape=input_shape(spec), name="input_1")
    x = inputs
    declared = spec.data_format
    if declared != compute_format:
        order = (2, 3, 1) if declared == "channels_first" else (3, 1, 2)
        x = layers.Permute(order, name="to_" + compute_format)(x)
    x = conv(x, 64, 7, 2, "conv1")
    x = layers.Activation("relu", name="activation_1")(norm(x, "bn_conv1"))
    x = layers.MaxPooling2D(3, strides=2, padding="same", data_format=compute_format,
                            name="pool1")(x)
    for stage, (filters, blocks) in enumerate(zip(STAGE_FILTERS, arch.blocks_per_stage,
                                                  strict=False), start=1):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 1) else 1
            x = block_fn(x, filters, stride, f"block_{stage}{chr(ord('a') + b)}")
    x = layers.GlobalAveragePooling2D(data_format=compute_format, name="avg_pool")(x)
    x = layers.Dense(num_classes, kernel_regularizer=regularizer, name="predictions_dense")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"gesturenet_resnet{spec.num_layers}")
