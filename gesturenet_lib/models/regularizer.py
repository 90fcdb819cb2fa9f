"""The spec's kernel regulariser, for any family's trainable layers."""

from __future__ import annotations

from gesturenet_lib.specs.experiment import Model


def make_regularizer(spec: Model):
    """The spec's kernel regulariser (L1 or L2), or None when its factor is 0."""
    import keras

    if spec.kernel_regularization_factor <= 0:
        return None
    reg_cls = keras.regularizers.L1 if spec.kernel_regularizer_type == "l1" \
        else keras.regularizers.L2
    return reg_cls(spec.kernel_regularization_factor)
