"""evaluate and inference: every model format gives the same numbers, reports are readable,
and bad input is one line with exit 2."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from gesturenet_lib import cli, crypto
from tests.conftest import SAMPLE
from tests.training_fixtures import train_colour_model, write_spec

pytestmark = pytest.mark.slow
KEY = "eval-key"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small trained model in every format, with its spec and data."""
    from gesturenet_lib.export.onnx_export import keras_to_onnx
    from gesturenet_lib.models.model_file import load_model_file

    root = tmp_path_factory.mktemp("trained")
    spec, tlt = train_colour_model(root, KEY, per_class=8, epochs=3)
    loaded = load_model_file(tlt, KEY)
    loaded.model.save(root / "model.keras")
    onnx_bytes = keras_to_onnx(loaded.model, {"classes": loaded.classes,
                                              "preprocessing": loaded.preprocessing.to_dict()})
    (root / "model.onnx").write_bytes(onnx_bytes)
    (root / "model.etlt").write_bytes(crypto.encrypt(onnx_bytes, KEY, "onnx"))
    return root, spec


def _evaluate(spec, model, capsys, data_type="validation_set", key=KEY):
    rc = cli.main(["evaluate", "-e", spec, "-m", str(model), "-k", key,
                   "--data_type", data_type])
    return rc, capsys.readouterr()


def test_evaluate_writes_metrics_png_and_report(trained, capsys):
    root, spec = trained
    rc, out = _evaluate(spec, root / "out/model/model.tlt", capsys)
    assert rc == 0, out.err
    results = root / "out/results"
    metrics = json.loads((results / "metrics.json").read_text())
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert metrics["confusion_matrix"]["labels"] == ["red", "green", "blue"]
    assert matrix.sum() == metrics["images_evaluated"] == 6 and metrics["images_skipped"] == 0
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    for name, m in metrics["per_class"].items():
        assert m["support"] == matrix[metrics["confusion_matrix"]["labels"].index(name)].sum()
    assert (results / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy" in out.out and "macro_avg" in out.out


def test_every_model_format_gives_the_same_metrics(trained, capsys):
    root, spec = trained
    seen = []
    for model in ("out/model/model.tlt", "model.keras", "model.onnx", "model.etlt"):
        rc, out = _evaluate(spec, root / model, capsys)
        assert rc == 0, (model, out.err)
        metrics = json.loads((root / "out/results/metrics.json").read_text())
        seen.append((metrics["accuracy"], metrics["confusion_matrix"]["matrix"]))
    assert all(s == seen[0] for s in seen)


def test_keras_and_onnx_runtime_agree_on_the_sample_photos(trained):
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input
    from gesturenet_lib.specs import load_experiment_spec

    root, spec_path = trained
    spec = load_experiment_spec(spec_path)
    keras_backend = load_backend(str(root / "out/model/model.tlt"), KEY, spec)
    onnx_backend = load_backend(str(root / "model.onnx"), None, spec)
    photos = sorted((SAMPLE / "dataset").rglob("*.jpg"))[:24]
    batch = np.stack([to_input(load_rgb(str(p)), keras_backend.preprocessing) for p in photos])
    a, b = keras_backend.predict(batch), onnx_backend.predict(batch)
    assert np.array_equal(a.argmax(1), b.argmax(1))
    assert np.abs(a - b).max() < 1e-4


def test_report_renders_in_headless_chromium_with_the_numbers_of_metrics_json(trained, capsys,
                                                                               tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed (make test installs it)"
    root, spec = trained
    assert _evaluate(spec, root / "out/model/model.tlt", capsys)[0] == 0
    page = root / "out/results/report.html"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "page.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,900",
                            page.as_uri()], check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    shown = dict(re.findall(r'data-key="([^"]+)">([^<]+)<', dom))
    metrics = json.loads((root / "out/results/metrics.json").read_text())
    assert float(shown["accuracy"]) == pytest.approx(metrics["accuracy"], abs=5e-5)
    assert float(shown["macro_avg.f1"]) == pytest.approx(metrics["macro_avg"]["f1"], abs=5e-5)
    assert int(shown["images_evaluated"]) == metrics["images_evaluated"]
    for name, m in metrics["per_class"].items():
        assert float(shown[f"{name}.recall"]) == pytest.approx(m["recall"], abs=5e-5)
        assert int(shown[f"{name}.support"]) == m["support"]


def test_inference_on_a_data_json_set_and_on_a_folder_of_crops(trained, capsys, tmp_path):
    root, spec = trained
    out = tmp_path / "res"
    rc = cli.main(["inference", "-e", spec, "-m", str(root / "model.onnx"), "--data_json",
                   str(root / "data.json"), "--image_root_path", str(root), "--data_type",
                   "validation_set", "--results_dir", str(out)])
    assert rc == 0, capsys.readouterr().err
    lines = (out / "results.txt").read_text().splitlines()
    expected = [e["full_image_path"] for e in json.loads(
        (root / "data.json").read_text())["validation_set"]["images"]]
    assert [line.split()[0] for line in lines] == expected  # data.json order
    path, index, name, confidence = lines[0].split()
    assert ["red", "green", "blue"][int(index)] == name and 0 < float(confidence) <= 1
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-4 for r in records)

    crops = tmp_path / "crops"
    shutil.copytree(root / "crops", crops)
    (crops / "green" / "broken.png").write_bytes(b"not a png")
    textured = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", textured)[1].tobytes()
    (crops / "green" / "cut.jpg").write_bytes(jpeg[:len(jpeg) // 2] + jpeg[3 * len(jpeg) // 4:])
    rc = cli.main(["inference", "-e", spec, "-m", str(root / "model.keras"), "--image_dir",
                   str(crops), "--results_dir", str(out)])
    assert rc == 0
    lines = (out / "results.txt").read_text().splitlines()
    assert len(lines) == 26 and lines[0].startswith("blue/000.png ")
    assert "green/broken.png -1 error" in (out / "results.txt").read_text()
    bad = {r["path"]: r["error"] for r in map(json.loads, (out / "results.jsonl").read_text()
                                                .splitlines()) if "error" in r}
    assert "unreadable image" in bad["green/broken.png"]
    assert "corrupt image (Corrupt JPEG data" in bad["green/cut.jpg"]  # a middle cut out


def test_inference_with_nothing_readable_exits_2(trained, capsys, tmp_path):
    root, spec = trained
    (tmp_path / "crops").mkdir()
    (tmp_path / "crops" / "a.png").write_bytes(b"junk")
    rc = cli.main(["inference", "-e", spec, "-m", str(root / "model.onnx"), "--image_dir",
                   str(tmp_path / "crops"), "--results_dir", str(tmp_path / "r")])
    assert rc == 2
    assert "no image could be classified (1 failed)" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["wrong_key", "truncated_tlt", "truncated_onnx", "tao_etlt",
                                  "class_count", "data_type", "engine_without_tensorrt",
                                  "unknown_format"])
def test_bad_model_input_is_one_line_with_exit_2(case, trained, capsys, tmp_path):
    root, spec = trained
    model, key, data_type, message = root / "out/model/model.tlt", KEY, "validation_set", ""
    if case == "wrong_key":
        key, message = "nope", "model.tlt: wrong key or corrupted file"
    elif case == "truncated_tlt":
        model = tmp_path / "cut.tlt"
        model.write_bytes((root / "out/model/model.tlt").read_bytes()[:5000])
        message = "cut.tlt: wrong key or corrupted file"
    elif case == "truncated_onnx":
        model = tmp_path / "cut.onnx"
        model.write_bytes((root / "model.onnx").read_bytes()[:3000])
        message = "cut.onnx: not a readable ONNX model"
    elif case == "tao_etlt":
        model = tmp_path / "tao.etlt"
        model.write_bytes(len(b"input_1").to_bytes(4, "little") + b"input_1" + bytes(200))
        message = "looks like a model encrypted by NVIDIA TAO"
    elif case == "class_count":
        other = json.loads(Path(spec).read_text())
        other["dataset"]["classes"]["extra"] = 3
        other["dataset"]["num_classes"] = 4
        spec = write_spec(tmp_path, other)
        message = "the model has 3 classes, the spec's dataset.num_classes is 4"
    elif case == "data_type":
        doc = json.loads((root / "data.json").read_text())
        del doc["kpi_set"]
        other = json.loads(Path(spec).read_text())
        other["dataset"]["data_path"] = str(tmp_path / "data.json")
        (tmp_path / "data.json").write_text(json.dumps(doc))
        spec, data_type, message = write_spec(tmp_path, other), "kpi_set", "has no kpi_set"
    elif case == "engine_without_tensorrt":
        model = tmp_path / "model.engine"
        model.write_bytes(b"\x00" * 64)
        message = "TensorRT engines need NVIDIA TensorRT and a GPU"
    elif case == "unknown_format":
        model = tmp_path / "model.pb"
        model.write_bytes(b"x")
        message = "unknown model format"
    rc, out = _evaluate(spec, model, capsys, data_type, key)
    assert rc == 2
    assert message in out.err and len(out.err.strip().splitlines()) == 1, out.err


def test_full_frame_inference_with_a_resnet_cuts_each_found_hand_as_dataset_convert(
        trained, tmp_path, capsys):
    """A ResNet (no landmark network of its own) on whole frames: each hand the finder found
    is cut by dataset_convert's rule (square, enlarged) and classified in every format."""
    import shutil

    from gesturenet_lib.data.geometry import PercentBox, crop_box
    from tests.conftest import SAMPLE

    root, spec = trained
    frames = tmp_path / "frames"
    frames.mkdir()
    for path in sorted((SAMPLE / "dataset" / "stop").glob("*.jpg"))[:3]:
        shutil.copy(path, frames / path.name)
    for model in ("out/model/model.tlt", "model.onnx"):
        out = tmp_path / model.replace("/", "_")
        assert cli.main(["inference", "-e", spec, "-m", str(root / model), "-k", KEY,
                         "--image_dir", str(frames), "--results_dir", str(out), "--full_frame",
                         "--bbox_enlarge_ratio", "1.2"]) == 0, capsys.readouterr().err
        hands = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert {h["path"] for h in hands} == {p.name for p in frames.iterdir()}
        for h in hands:
            assert h["class_name"] in ("red", "green", "blue")
            w, h_ = h["image_size"]
            x0, y0, x1, y1 = h["box"]
            expected = crop_box(PercentBox(100 * x0 / w, 100 * y0 / h_, 100 * (x1 - x0) / w,
                                           100 * (y1 - y0) / h_), w, h_, True, 1.2)
            assert h["crop_box"] == [expected.x0, expected.y0, expected.x1, expected.y1]
            assert "hand_found" not in h
    capsys.readouterr()
    assert cli.main(["inference", "-e", spec, "-m", str(root / "model.onnx"), "--image_dir",
                     str(frames), "--results_dir", str(tmp_path / "x"), "--previews",
                     str(tmp_path / "p")]) == 2
    assert "--previews" in capsys.readouterr().err
