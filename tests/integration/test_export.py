"""export: ONNX and .etlt, deployment configs that match the model, INT8 calibration with a
TensorRT-format cache, and the clear error where TensorRT is missing."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from gesturenet_lib import cli
from tests.training_fixtures import train_colour_model

pytestmark = pytest.mark.slow
KEY = "export-key"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model that has learned the separable colour dataset."""
    root = tmp_path_factory.mktemp("export")
    spec, tlt = train_colour_model(root, KEY, per_class=16, epochs=6)
    return root, spec, tlt


def _export(*args):
    return cli.main(["export", *map(str, args)])


def test_onnx_export_matches_keras_and_writes_every_deployment_file(model, tmp_path):
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    root, spec, tlt = model
    out = tmp_path / "model.onnx"
    assert _export("-m", tlt, "-k", KEY, "-o", out, "--max_batch_size", 8) == 0
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    (inp,), (outp,) = proto.graph.input, proto.graph.output
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "input_1" and dims[1:] == [3, 32, 32] and isinstance(dims[0], str)
    assert outp.name == "predictions"
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["gesturenet"])
    assert meta["classes"] == {"red": 0, "green": 1, "blue": 2} and "gesturenet_version" in meta

    keras_b, onnx_b = load_backend(tlt, KEY, None), load_backend(str(out), None, None)
    crops = sorted((root / "crops").rglob("*.png"))
    batch = np.stack([to_input(load_rgb(str(p)), keras_b.preprocessing) for p in crops])
    a, b = keras_b.predict(batch), onnx_b.predict(batch)
    assert np.array_equal(a.argmax(1), b.argmax(1)) and np.abs(a - b).max() < 1e-4

    assert (tmp_path / "labels.txt").read_text() == "red;green;blue\n"  # nvinfer: a line a layer
    ds = dict(line.split("=", 1) for line in (tmp_path / "nvinfer_config.txt").read_text()
              .splitlines()[1:] if "=" in line)
    assert float(ds["net-scale-factor"]) == pytest.approx(keras_b.preprocessing.scale)
    assert ds["offsets"] == "0;0;0" and ds["infer-dims"] == "3;32;32"
    assert ds["onnx-file"] == "model.onnx" and ds["output-blob-names"] == "predictions"
    assert ds["network-mode"] == "0" and ds["batch-size"] == "8"

    triton = (tmp_path / "triton/gesturenet/config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in triton and "max_batch_size: 8" in triton
    names = re.findall(r'\bname: "([^"]+)"', triton)
    assert names == ["gesturenet", inp.name, outp.name]
    assert re.findall(r"dims: \[ ([^\]]+) \]", triton) == ["3, 32, 32", "3"]
    assert (tmp_path / "triton/gesturenet/1/model.onnx").read_bytes() == out.read_bytes()


def test_etlt_round_trip_wrong_key_and_deepstream_note(model, tmp_path, capsys):
    root, spec, tlt = model
    out = tmp_path / "model.etlt"
    assert _export("-m", tlt, "-k", KEY, "-o", out) == 0
    assert "DeepStream and Triton cannot decrypt .etlt" in capsys.readouterr().out
    assert "onnx-file=" not in (tmp_path / "nvinfer_config.txt").read_text()
    assert cli.main(["evaluate", "-e", spec, "-m", str(out), "-k", KEY,
                     "--data_type", "validation_set"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "-e", spec, "-m", str(out), "-k", "bad",
                     "--data_type", "validation_set"]) == 2
    assert "model.etlt: wrong key or corrupted file" in capsys.readouterr().err


def test_without_an_output_flag_etlt_is_appended_to_the_model_path(model, tmp_path):
    """TAO's rule for a missing -o: ".etlt is appended to model path"."""
    _, _, tlt = model
    copy = tmp_path / "model.tlt"
    copy.write_bytes(Path(tlt).read_bytes())
    assert _export("-m", copy, "-k", KEY) == 0
    assert (tmp_path / "model.tlt.etlt").is_file()


def test_int8_calibration_cache_quantized_model_and_reuse(model, tmp_path, caplog):
    from gesturenet_lib.export.calibration import quantized_activations, read_cache
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    root, spec, tlt = model
    cache = tmp_path / "cal.bin"
    args = ["-m", tlt, "-k", KEY, "-o", tmp_path / "model.onnx", "--data_type", "int8",
            "--cal_image_dir", root / "crops", "--cal_cache_file", cache, "--batch_size", 8,
            "--batches", 4]
    assert _export(*args) == 0
    lines = cache.read_text().splitlines()
    assert re.fullmatch(r"TRT-\d+-EntropyCalibration2", lines[0])
    assert all(re.fullmatch(r".+: [0-9a-f]{8}", line) for line in lines[1:])
    parsed = read_cache(str(cache))
    int8 = (tmp_path / "model_int8.onnx").read_bytes()
    assert quantized_activations(int8) <= set(parsed.scales)
    assert all(s > 0 for s in parsed.scales.values())

    fp32 = load_backend(str(tmp_path / "model.onnx"), None, None)
    q = load_backend(str(tmp_path / "model_int8.onnx"), None, None)
    crops = sorted((root / "crops").rglob("*.png"))
    batch = np.stack([to_input(load_rgb(str(p)), fp32.preprocessing) for p in crops])
    agreement = np.mean(fp32.predict(batch).argmax(1) == q.predict(batch).argmax(1))
    assert agreement >= 0.97

    # the cache is reused: no images and no tensorfile are needed any more
    (tmp_path / "calibration.tensorfile.npy").unlink()
    before = cache.read_bytes()
    args[args.index("--cal_image_dir") + 1] = tmp_path / "nowhere"
    caplog.clear()
    caplog.set_level(logging.INFO)
    assert _export(*args) == 0
    assert cache.read_bytes() == before
    assert "reusing calibration cache" in caplog.text


def test_too_few_calibration_images_is_a_clear_error(model, tmp_path, capsys):
    root, spec, tlt = model
    assert _export("-m", tlt, "-k", KEY, "-o", tmp_path / "m.onnx", "--data_type", "int8",
                   "--cal_image_dir", root / "crops" / "red", "--cal_cache_file",
                   tmp_path / "c.bin", "--batch_size", 8, "--batches", 10) == 2
    assert "16 usable images found, 80 needed (--batch_size 8 x --batches 10)" in \
        capsys.readouterr().err


@pytest.mark.parametrize("flags,message", [
    (["--engine_file", "model.engine"], "TensorRT engines need NVIDIA TensorRT and a GPU"),
    (["--input_dims", "3,160,160"], "the model's input is 3,32,32"),
    (["--backend", "uff"], "--backend uff: only onnx is supported"),
])
def test_export_errors(model, tmp_path, capsys, flags, message):
    root, spec, tlt = model
    assert _export("-m", tlt, "-k", KEY, "-o", tmp_path / "m.onnx", *flags) == 2
    assert message in capsys.readouterr().err


def test_exporting_from_onnx_never_imports_tensorflow(model, tmp_path):
    root, spec, tlt = model
    assert _export("-m", tlt, "-k", KEY, "-o", tmp_path / "model.etlt") == 0
    code = ("import sys; from gesturenet_lib import cli; "
            f"rc = cli.main(['export', '-m', r'{tmp_path / 'model.etlt'}', '-k', '{KEY}', "
            f"'-o', r'{tmp_path / 'again.onnx'}']); "
            "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split()[-3:] == ["0", "False", "False"], out.stderr[-1000:]
