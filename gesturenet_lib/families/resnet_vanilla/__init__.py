"""``resnet_vanilla``: a ResNet (TAO's layer counts) trained from scratch on the crops, with
the spec's augmentations, at the spec's input size."""

from __future__ import annotations

from gesturenet_lib.export.calibration import QuantizeSettings
from gesturenet_lib.families.base import TrainingInputs
from gesturenet_lib.models.preprocessing import Preprocessing


class ResnetVanilla:
    name = "resnet_vanilla"
    quantize = QuantizeSettings(op_types=None, reduce_range=True)

    def preprocessing(self, model) -> Preprocessing:
        from gesturenet_lib.families.resnet_vanilla.network import preprocessing

        return preprocessing(model)

    def build(self, spec):
        from gesturenet_lib.families.resnet_vanilla.network import build_resnet

        return build_resnet(spec.model, spec.dataset.num_classes)

    def training_inputs(self, spec, train_set, val_set, prep, repeat_val) -> TrainingInputs:
        from gesturenet_lib.training.data import make_dataset

        n = spec.dataset.num_classes
        train = make_dataset(train_set, prep, n, spec.batch_size, spec.dataset.augmentation,
                             shuffle=True, seed=spec.random_seed, repeat=True)
        val = make_dataset(val_set, prep, n, spec.batch_size, None, shuffle=False,
                           seed=spec.random_seed, repeat=repeat_val) if len(val_set) else None
        return TrainingInputs(train, val, len(train_set), {})

    def metadata(self, spec) -> dict:
        return {"num_layers": spec.model.num_layers}

    def to_onnx(self, loaded, metadata: dict, opset: int | None) -> bytes:
        from gesturenet_lib.export.onnx_export import DEFAULT_OPSET, keras_to_onnx

        return keras_to_onnx(loaded.model, metadata, opset or DEFAULT_OPSET)

    def keras_objects(self) -> dict:
        return {}

    def backend(self, loaded, classes, prep):
        from gesturenet_lib.inference.backends import KerasBackend

        return KerasBackend(loaded.model, classes, prep)


FAMILY = ResnetVanilla()
