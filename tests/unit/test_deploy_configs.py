"""The files DeepStream and Triton read, in the formats they document."""

from __future__ import annotations

import pytest

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.export import deploy_configs

CLASSES = ["thumbs_up", "fist", "stop", "ok", "two", "random"]


def _read_like_nvinfer(text: str) -> list[list[str]]:
    """nvinfer's reading of a classifier's labelfile-path: a line per output layer, ';' between
    that layer's labels."""
    return [line.split(";") for line in text.splitlines() if line]


def test_nvinfer_label_file_is_one_line_for_the_one_output_layer():
    text = deploy_configs.nvinfer_labels(CLASSES)
    assert text == "thumbs_up;fist;stop;ok;two;random\n"
    assert _read_like_nvinfer(text) == [CLASSES]  # class i is label i of layer 0
    # NVIDIA's own GestureNet label file reads the same way
    assert _read_like_nvinfer("THUMBSUP;FIST;STOP;OK;RAISE;RANDOMGESTURE\n")[0][5] == \
        "RANDOMGESTURE"


def test_triton_keeps_one_label_per_line():
    assert deploy_configs.labels_txt(CLASSES).splitlines() == CLASSES


def test_a_class_name_nvinfer_cannot_hold_is_refused():
    with pytest.raises(UserInputError, match="rename the class"):
        deploy_configs.nvinfer_labels(["a;b", "c"])


@pytest.mark.parametrize("fit, keys", [("letterbox", {"maintain-aspect-ratio": "1",
                                                      "symmetric-padding": "1"}),
                                       ("stretch", {"maintain-aspect-ratio": "0"})])
def test_nvinfer_fits_crops_as_the_model_was_trained(fit, keys):
    from gesturenet_lib.models.preprocessing import Preprocessing

    prep = Preprocessing(224, 224, 3, "channels_first", fit=fit)
    info = deploy_configs.DeployInfo(CLASSES, prep, (3, 224, 224), "fp32", 8)
    text = deploy_configs.deepstream_config(info, "model.onnx", "onnx", None)
    found = dict(line.split("=", 1) for line in text.splitlines()[1:])
    assert {k: found.get(k) for k in keys} == keys
    if fit == "stretch":
        assert "symmetric-padding" not in found
