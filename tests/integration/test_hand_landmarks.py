"""The hand_landmarks family end to end on the bundled HaGRID sample: import, convert with the
landmark dataset spec, train, evaluate, inference and export, and the merged ONNX graph
against the two-step path it was made from."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest

from gesturenet_lib import cli
from tests.conftest import SPECS
from tests.landmark_sample import convert_sample_for_landmarks
from tests.training_fixtures import train_on_two_workers

KEY = "landmark-test-key"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return convert_sample_for_landmarks(tmp_path_factory.mktemp("landmarks"))


@pytest.fixture(scope="module")
def trained(converted):
    spec = json.loads((SPECS / "landmark_train_spec.json").read_text())
    spec["trainer"]["finetuning"]["train_epochs"] = 25
    path = converted / "specs" / "landmark_train_spec.json"
    path.write_text(json.dumps(spec))
    assert cli.main(["train", "-e", str(path), "-k", KEY]) == 0
    model = converted / "workspace/experiments_landmarks/model/model.tlt"
    assert model.exists()
    return converted, str(path), str(model)


def _metrics(root, spec, model, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", "-e", spec, "-m", model, "-k", KEY]) == 0
    return json.loads((root / "workspace/experiments_landmarks/results/metrics.json").read_text())


def test_train_learns_from_the_landmarks(trained, capsys):
    root, spec, model = trained
    metrics = _metrics(root, spec, model, capsys)
    majority = max(m["support"] for m in metrics["per_class"].values()) / \
        metrics["images_evaluated"]
    assert metrics["accuracy"] > majority + 0.1
    assert metrics["macro_avg"]["f1"] > 0.6
    assert 0 < metrics["no_hand_found"] < metrics["images_evaluated"] / 2
    assert metrics["no_hand_found_counted_as"] == "random"
    rows = (root / "workspace/experiments_landmarks/model/metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 25


def test_export_is_one_graph_that_agrees_with_the_two_step_path(trained, capsys):
    import onnx
    import onnxruntime as ort

    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    root, spec, model = trained
    out = root / "export" / "model.onnx"
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(out)]) == 0
    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ["input_1"]
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == \
        ["N", 3, 224, 224]
    assert [o.name for o in graph.output] == ["predictions", "hand_found"]
    config = (root / "export" / "nvinfer_config.txt").read_text()
    assert "infer-dims=3;224;224" in config and "net-scale-factor=0.0039215686" in config

    doc = json.loads((root / "workspace/data_landmarks.json").read_text())
    two_step = load_backend(model, KEY, None)
    crops = [to_input(load_rgb(str(root / "workspace" / e["bbox_path"])), two_step.preprocessing)
             for e in doc["kpi_set"]["images"]]
    batch = np.stack(crops)
    expected, hands = two_step.predict_with_hands(batch)
    session = ort.InferenceSession(str(out))
    merged, found = session.run(None, {"input_1": batch})
    assert (merged.argmax(1) == expected.argmax(1)).all()
    np.testing.assert_allclose(merged, expected, atol=1e-4)
    assert ((found[:, 0] > 0.5) == hands).all()
    single = session.run(None, {"input_1": batch[:1]})[0]  # the batch is dynamic
    np.testing.assert_allclose(single, merged[:1], atol=1e-5)


def test_every_format_gives_the_same_metrics_and_inference_reports_hands(trained, capsys):
    root, spec, model = trained
    etlt = root / "export_etlt" / "model.etlt"
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(etlt)]) == 0
    reference = _metrics(root, spec, model, capsys)
    for other in (str(etlt),):
        got = _metrics(root, spec, other, capsys)
        assert got["confusion_matrix"] == reference["confusion_matrix"]
        assert got["no_hand_found"] == reference["no_hand_found"]
    results = root / "inference"
    assert cli.main(["inference", "-e", spec, "-m", str(etlt), "-k", KEY, "--data_json",
                     str(root / "workspace/data_landmarks.json"), "--image_root_path",
                     str(root / "workspace"), "--results_dir", str(results)]) == 0
    records = [json.loads(line) for line in (results / "results.jsonl").read_text().splitlines()]
    assert {r["hand_found"] for r in records} == {True, False}


def test_crops_without_a_hand_go_to_random(trained, tmp_path):
    import cv2

    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import to_input

    _, _, model = trained
    backend = load_backend(model, KEY, None)
    blank = np.full((120, 120, 3), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 255, (90, 90, 3), dtype=np.uint8)
    sky = cv2.GaussianBlur(noise, (31, 31), 10)
    batch = np.stack([to_input(img, backend.preprocessing) for img in (blank, sky)])
    probs, hands = backend.predict_with_hands(batch)
    assert not hands.any()
    assert (probs.argmax(1) == backend.classes["random"]).all()


def test_a_resnet_key_in_a_landmark_spec_exits_2(trained, tmp_path, capsys):
    _, spec, _ = trained
    doc = json.loads(open(spec).read())
    doc["model"]["image_height"] = 160
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    capsys.readouterr()
    assert cli.main(["train", "-e", str(bad), "-k", KEY]) == 2
    err = capsys.readouterr().err
    assert "model.image_height = 160: does not apply to base_model" in err


def test_rotated_views_find_more_hands_and_map_landmarks_back(converted):
    """The extractor also tries the crop turned 90 degrees each way; a crop turned
    counter-clockwise is found through its clockwise view, with the landmarks of the upright
    crop expressed in the turned crop's frame, and its world landmarks turned with it."""
    from gesturenet_lib.families.hand_landmarks.assets import (
        canned_onnx_bytes,
        embedder_onnx_bytes,
        landmark_onnx_bytes,
    )
    from gesturenet_lib.families.hand_landmarks.extractor import Extractor, build_extractor
    from gesturenet_lib.models.preprocessing import Preprocessing, load_rgb, to_input
    from gesturenet_lib.specs.experiment import HandLandmarks

    doc = json.loads((converted / "workspace/data_landmarks.json").read_text())
    prep = Preprocessing(224, 224, 3, "channels_first")
    crops = np.stack([to_input(load_rgb(str(converted / "workspace" / e["bbox_path"])), prep)
                      for e in doc["train_set"]["images"][:60]])
    network = landmark_onnx_bytes()
    gesture = {"embedder_onnx": embedder_onnx_bytes(), "canned_onnx": canned_onnx_bytes()}
    upright = Extractor(build_extractor(network, HandLandmarks(localization="none"),
                                        "channels_first", **gesture))(crops)
    rotated = Extractor(build_extractor(network, HandLandmarks(localization="views",
                                                               second_look_border=0.0),
                                        "channels_first", **gesture))
    best = rotated(crops)
    assert (best[:, 63] >= upright[:, 63] - 1e-6).all()
    assert (best[:, 63] >= 0.5).sum() > (upright[:, 63] >= 0.5).sum()

    turned = rotated(np.ascontiguousarray(np.rot90(crops, k=1, axes=(2, 3))))  # CCW
    hands = (upright[:, 63] >= 0.5) & np.isclose(turned[:, 63], upright[:, 63], atol=1e-5)
    assert hands.sum() > 20
    points = upright[hands, :63].reshape(-1, 21, 3)
    expected = np.stack([points[..., 1], 224 - points[..., 0], points[..., 2]], axis=-1)
    np.testing.assert_allclose(turned[hands, :63].reshape(-1, 21, 3), expected, atol=1e-3)
    world = upright[hands, 65:128].reshape(-1, 21, 3)
    world = world - world[:, :1]
    turned_world = turned[hands, 65:128].reshape(-1, 21, 3)
    turned_world = turned_world - turned_world[:, :1]
    expected = np.stack([world[..., 1], -world[..., 0], world[..., 2]], axis=-1)
    np.testing.assert_allclose(turned_world, expected, atol=1e-4)


def test_int8_export_of_the_merged_graph(trained, tmp_path):
    """Calibration and the CPU INT8 model work on the merged graph (one opset per domain)."""
    import shutil

    import onnxruntime as ort

    from gesturenet_lib.models.preprocessing import Preprocessing, load_rgb, to_input

    root, _, model = trained
    doc = json.loads((root / "workspace/data_landmarks.json").read_text())
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, entry in enumerate(doc["train_set"]["images"][:16]):
        shutil.copy(root / "workspace" / entry["bbox_path"], calib / f"{i:02d}.jpg")
    out = tmp_path / "int8" / "model.onnx"
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(out), "--data_type", "int8",
                     "--cal_image_dir", str(calib), "--batches", "2", "--batch_size", "8",
                     "--cal_cache_file", str(tmp_path / "int8" / "cal.bin")]) == 0
    header = (tmp_path / "int8" / "cal.bin").read_text().splitlines()[0]
    assert header.startswith("TRT-") and header.endswith("EntropyCalibration2")
    prep = Preprocessing(224, 224, 3, "channels_first")
    batch = np.stack([to_input(load_rgb(str(root / "workspace" / e["bbox_path"])), prep)
                      for e in doc["kpi_set"]["images"]])
    fp32 = ort.InferenceSession(str(out)).run(None, {"input_1": batch})[0].argmax(1)
    int8 = ort.InferenceSession(str(tmp_path / "int8" / "model_int8.onnx")).run(
        None, {"input_1": batch})[0].argmax(1)
    assert (fp32 == int8).mean() > 0.75


def test_weights_init_continues_a_landmark_model_and_refuses_another_family(trained, capsys,
                                                                            caplog):
    root, spec_path, model = trained
    doc = json.loads(open(spec_path).read())
    doc["model"]["weights_init"] = model
    doc["model"]["hand_landmarks"]["augment_cuts"] = 1   # and trains on each crop cut again
    # and on each crop's hand as the palm detector finds it (the spec's own localization
    # and a name listed twice add nothing)
    doc["model"]["hand_landmarks"]["augment_localizations"] = [
        "palm_detector", "landmarks_first", "palm_detector"]
    doc["trainer"]["finetuning"]["train_epochs"] = 2
    doc["output_experiments_fld"] = str(root / "continued")
    again = root / "specs" / "continued.json"
    again.write_text(json.dumps(doc))
    caplog.set_level(logging.INFO)
    assert cli.main(["train", "-e", str(again), "-k", KEY]) == 0
    history = (root / "continued/model/metrics.csv").read_text().splitlines()
    first_loss = float(history[1].split(",")[2])
    assert first_loss < 1.0  # started from the trained head, not from scratch
    found = re.search(r"hand found in (\d+) of (\d+) training crops \(each crop also with "
                      r"1 more cut, the hand found by palm_detector\)", caplog.text)
    train_crops = sum(json.loads((root / "workspace/data_landmarks.json").read_text())
                      ["stats"]["per_split"]["train_set"].values())
    assert found and int(found[2]) == 3 * train_crops and int(found[1]) > 2 * train_crops

    resnet = root / "resnet.tlt"
    from gesturenet_lib.families.resnet_vanilla.network import build_resnet
    from gesturenet_lib.models.model_file import save_tlt
    from gesturenet_lib.models.preprocessing import Preprocessing
    from gesturenet_lib.specs.experiment import Model

    classes = doc["dataset"]["classes"]
    save_tlt(str(resnet), build_resnet(Model(num_layers=6, image_height=32, image_width=32),
                                       len(classes)), KEY, classes,
             Preprocessing(32, 32, 3, "channels_first"), {"base_model": "resnet_vanilla"})
    doc["model"]["weights_init"] = str(resnet)
    doc["output_experiments_fld"] = str(root / "from_resnet")
    again.write_text(json.dumps(doc))
    capsys.readouterr()
    assert cli.main(["train", "-e", str(again), "-k", KEY]) == 2
    assert "is a resnet_vanilla model, the spec's model.base_model is hand_landmarks" in \
        capsys.readouterr().err


def test_two_workers_train_the_head_and_its_vote_together(trained):
    """Multi-worker training (TF_CONFIG, as on Kubeflow) runs the vote's random pick and the
    dropout under the distribution strategy; the chief writes a model with both heads."""
    from gesturenet_lib.families import keras_objects
    from gesturenet_lib.models.model_file import load_model_file

    root, spec_path, _ = trained
    doc = json.loads(open(spec_path).read())
    doc["trainer"]["num_workers"] = 2
    doc["trainer"]["finetuning"]["train_epochs"] = 1
    doc["output_experiments_fld"] = str(root / "two_workers")
    spec = root / "specs" / "two_workers.json"
    spec.write_text(json.dumps(doc))
    codes, outputs = train_on_two_workers(str(spec), KEY, timeout=600)
    assert codes == [0, 0], outputs[0][-1500:] + outputs[1][-1500:]
    assert all("finetuning epoch 1" in out for out in outputs)
    model = load_model_file(str(root / "two_workers/model/model.tlt"), KEY, keras_objects()).model
    names = {layer.name for layer in model.layers}
    assert {"vote", "canned_probabilities", "probabilities"} <= names
