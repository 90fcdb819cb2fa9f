"""Keras -> ONNX with tf2onnx: input ``input_1`` in the declared layout with a dynamic batch
dimension, output ``predictions`` (the softmax), and our metadata (class names,
preprocessing, version) in the model's ``metadata_props`` under the key ``gesturenet``."""

from __future__ import annotations

import json

from gesturenet_lib import __version__
from gesturenet_lib.models.model_file import ONNX_METADATA_KEY

DEFAULT_OPSET = 13
HAND_FOUND = "hand_found"  # a hand_landmarks model's second output: was a hand found


def keras_to_onnx(model, metadata: dict, opset: int = DEFAULT_OPSET) -> bytes:
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="input_1")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    stable_tensor_names(proto)
    add_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def add_metadata(proto, metadata: dict) -> None:
    """Store our metadata (replacing any) in the model's ``metadata_props``."""
    kept = [e for e in proto.metadata_props if e.key != ONNX_METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = json.dumps({**metadata, "gesturenet_version": __version__}, sort_keys=True)


def stable_tensor_names(proto) -> None:
    """Rename the graph's intermediate tensors ``<op>_<node index>`` (graph inputs, outputs and
    weights keep their names). TensorFlow's names carry per-process counters
    (``model_1/...`` then ``model_2/...``), and a calibration cache must name the same tensors
    in every export of the same model."""
    graph = proto.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {
        i.name for i in graph.initializer}
    renamed: dict[str, str] = {}
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index:04d}"
        for k, name in enumerate(node.output):
            if name and name not in keep:
                renamed[name] = f"{node.op_type.lower()}_{index:04d}" + (f"_{k}" if k else "")
    for node in graph.node:
        for field in (node.input, node.output):
            for k, name in enumerate(field):
                if name in renamed:
                    field[k] = renamed[name]
    for value in graph.value_info:
        if value.name in renamed:
            value.name = renamed[value.name]
