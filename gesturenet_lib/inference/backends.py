"""One model interface, one backend per format.

``load_backend(path, key, spec)`` reads ``.tlt`` (our encrypted Keras), ``.keras``, ``.onnx``,
``.etlt`` (our encrypted ONNX, written by export) or ``.engine`` (TensorRT) and returns an
object with ``classes``, ``preprocessing`` and ``predict(batch) -> probabilities``. The ONNX and
TensorRT paths never import TensorFlow, so a deployment machine needs neither it nor Keras.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.gpu import require_tensorrt
from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.ort_cpu import cpu_session

FORMATS = (".tlt", ".keras", ".onnx", ".etlt", ".engine")
# ONNX Runtime runs a batch in parts of this many images: its arena keeps the largest run's
# activations, so a batch of 64 hand_landmarks crops held 1.4 GB where parts of 8 hold 0.16
# GB, and ran faster on this CPU (3.1 vs 3.8 s).
ORT_RUN_IMAGES = 8


@dataclass
class Backend(ABC):
    """What every backend offers; ``run`` maps a float32 batch to class probabilities."""
    name: str
    classes: dict[str, int]
    preprocessing: Preprocessing
    num_outputs: int

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.run(np.ascontiguousarray(batch, dtype=np.float32)))

    def predict_with_hands(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(probabilities, hand found per image) where the model reports it (the
        hand_landmarks family), else (probabilities, None)."""
        return self.predict(batch), None

    @abstractmethod
    def run(self, batch: np.ndarray):
        """Probabilities for a float32 batch in the model's input layout."""


class KerasBackend(Backend):
    def __init__(self, model, classes, preprocessing):
        import tensorflow as tf

        super().__init__("keras", classes, preprocessing, int(model.output_shape[-1]))
        self.model = model
        self.fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def run(self, batch):
        return self.fn(batch).numpy()


class OnnxBackend(Backend):
    def __init__(self, onnx_bytes: bytes, classes, preprocessing, source: str):
        try:
            self.session = cpu_session(onnx_bytes)
        except Exception as err:  # ORT raises its own exception types
            raise UserInputError(f"{source}: not a readable ONNX model (truncated or "
                                 f"corrupted?): {str(err).splitlines()[0][:120]}") from None
        output = self.session.get_outputs()[0]
        super().__init__("onnxruntime", classes, preprocessing, int(output.shape[-1]))
        self.onnx_bytes = onnx_bytes   # for a part of the graph (a family's landmark path)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _in_parts(self, outputs: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """``outputs`` for ``batch``, run ORT_RUN_IMAGES images at a time."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        parts = [self.session.run(outputs, {self.input_name: batch[i:i + ORT_RUN_IMAGES]})
                 for i in range(0, max(len(batch), 1), ORT_RUN_IMAGES)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(outputs))]

    def run(self, batch):
        return self._in_parts(self.output_names[:1], batch)[0]

    def predict_with_hands(self, batch):
        from gesturenet_lib.export.onnx_export import HAND_FOUND

        if HAND_FOUND not in self.output_names:
            return self.predict(batch), None
        probs, found = self._in_parts([self.output_names[0], HAND_FOUND], batch)
        return probs, found[:, 0] >= 0.5


class TensorRTBackend(Backend):
    """A serialized TensorRT engine, run with TensorRT's Python API and cuda-python."""

    def __init__(self, engine_bytes: bytes, classes, preprocessing, source: str):
        trt, cudart = require_tensorrt(source)
        self.trt, self.cudart = trt, cudart
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise UserInputError(f"{source}: TensorRT could not load this engine (built by "
                                 "another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names
                               if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names
                                if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        outputs = int(self.engine.get_tensor_shape(self.output_name)[-1])
        super().__init__("tensorrt", classes, preprocessing, outputs)

    def _check(self, result):
        err = result[0] if isinstance(result, tuple) else result
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err}")
        return result[1:] if isinstance(result, tuple) and len(result) > 1 else None

    def run(self, batch):
        cudart = self.cudart
        self.context.set_input_shape(self.input_name, batch.shape)
        out = np.empty((batch.shape[0], self.num_outputs), np.float32)
        (d_in,) = self._check(cudart.cudaMalloc(batch.nbytes))
        (d_out,) = self._check(cudart.cudaMalloc(out.nbytes))
        try:
            kind = cudart.cudaMemcpyKind
            self._check(cudart.cudaMemcpy(d_in, batch.ctypes.data, batch.nbytes,
                                          kind.cudaMemcpyHostToDevice))
            self.context.set_tensor_address(self.input_name, int(d_in))
            self.context.set_tensor_address(self.output_name, int(d_out))
            if not self.context.execute_async_v3(0):
                raise RuntimeError("TensorRT execution failed")
            self._check(cudart.cudaDeviceSynchronize())
            self._check(cudart.cudaMemcpy(out.ctypes.data, d_out, out.nbytes,
                                          kind.cudaMemcpyDeviceToHost))
        finally:
            cudart.cudaFree(d_in)
            cudart.cudaFree(d_out)
        return out
