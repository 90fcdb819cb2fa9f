"""A hand_landmarks model as ONE ONNX graph: the frozen extractor (palm detector, rotated
hand box, landmark network) joined to the Keras head converted by tf2onnx."""

from __future__ import annotations

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.export.onnx_export import add_metadata, keras_to_onnx
from gesturenet_lib.families.hand_landmarks.extractor import merge_for_export


def landmark_model_to_onnx(head, extractor_onnx: bytes, threshold: float, metadata: dict,
                           opset: int | None = None) -> bytes:
    """A hand_landmarks model (extractor + Keras head) -> ONE graph, ``input_1`` ->
    ``predictions`` and ``hand_found``, with our metadata, at the extractor's opset (13, or
    16 with the palm detector's GridSample)."""
    import onnx

    own = max(o.version for o in onnx.load_from_string(extractor_onnx).opset_import
              if o.domain in ("", "ai.onnx"))
    if opset not in (None, own):
        raise UserInputError(f"--target_opset {opset}: this hand_landmarks model exports at "
                             f"opset {own}, its extractor's")
    opset = own
    merged = merge_for_export(extractor_onnx, keras_to_onnx(head, {}, opset), threshold)
    add_metadata(merged, metadata)
    onnx.checker.check_model(merged)
    return merged.SerializeToString()
