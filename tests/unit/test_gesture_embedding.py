"""MediaPipe's gesture embedder inside our crop graph: its inputs are prepared as MediaPipe's
own gesture graph prepares them. Checked against MediaPipe 0.10.21's GestureRecognizer: fed
the landmarks MediaPipe found on real photos, our graph and Google's canned classifier give
MediaPipe's own canned scores (tests/data/mediapipe_gesture_reference.json)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.families.hand_landmarks import assets
from gesturenet_lib.families.hand_landmarks.layout import (
    CANNED_SIZE,
    CANNED_START,
    EMBEDDING_START,
    HANDEDNESS,
    MEDIAPIPE_NORMALIZE_Z,
    NET_ROW,
    PRESENCE,
    RAW_SIZE,
    WORLD_START,
)

REFERENCE = Path(__file__).parents[1] / "data" / "mediapipe_gesture_reference.json"
SIDE = 224


def _embedding_session():
    """A graph of the embedding nodes alone: rows [N, NET_ROW] -> [N, RAW_SIZE]."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from gesturenet_lib.families.hand_landmarks.embedding_graph import embedding_nodes

    nodes, inits = embedding_nodes("rows", SIDE, assets.embedder_onnx_bytes(),
                                   assets.canned_onnx_bytes(), "out")
    graph = helper.make_graph(
        nodes, "embedding", [helper.make_tensor_value_info("rows", TensorProto.FLOAT,
                                                           ["N", NET_ROW])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", RAW_SIZE])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _canned(embedding: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(assets.canned_onnx_bytes(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: embedding})[0]


def _row_from_mediapipe(hand: dict) -> np.ndarray:
    """MediaPipe's landmarks of one hand as a row of our graph: pixels of a square frame of
    side SIDE holding MediaPipe's aspect-normalised coordinates; the handedness as the
    landmark network gives it (MediaPipe reports its complement as "Left")."""
    w, h = hand["image_width"], hand["image_height"]
    longer = max(w, h)
    points = np.array(hand["landmarks"], np.float32)
    screen = np.stack([((points[:, 0] - 0.5) * w / longer + 0.5) * SIDE,
                       ((points[:, 1] - 0.5) * h / longer + 0.5) * SIDE,
                       points[:, 2] * MEDIAPIPE_NORMALIZE_Z * SIDE], axis=1)
    label, score = hand["handedness"]
    row = np.zeros(NET_ROW, np.float32)
    row[:63] = screen.reshape(-1)
    row[PRESENCE] = 1.0
    row[HANDEDNESS] = score if label == "Right" else 1.0 - score
    row[WORLD_START:] = np.array(hand["world_landmarks"], np.float32).reshape(-1)
    return row


def test_our_graph_gives_mediapipes_own_canned_scores_on_its_landmarks():
    hands = json.loads(REFERENCE.read_text())["hands"]
    rows = np.stack([_row_from_mediapipe(h) for h in hands])
    out = _embedding_session().run(None, {"rows": rows})[0]
    np.testing.assert_array_equal(out[:, :NET_ROW], rows)  # the row is carried through
    scores = _canned(out[:, EMBEDDING_START:CANNED_START])
    np.testing.assert_allclose(scores.max(axis=1), [h["canned_top_score"] for h in hands],
                               atol=1e-4)
    # the graph's own canned scores are the classifier's on its embedding
    np.testing.assert_allclose(out[:, CANNED_START:CANNED_START + CANNED_SIZE], scores,
                               atol=1e-6)
    # the handedness matters: its complement is far from MediaPipe's scores
    flipped = rows.copy()
    flipped[:, HANDEDNESS] = 1.0 - flipped[:, HANDEDNESS]
    wrong = _embedding_session().run(None, {"rows": flipped})[0][:, CANNED_START:]
    assert np.abs(wrong.max(axis=1) - scores.max(axis=1)).max() > 0.01


def test_the_embedding_ignores_where_the_hand_is_and_how_big_it_is():
    hands = json.loads(REFERENCE.read_text())["hands"]
    row = _row_from_mediapipe(hands[0])
    moved = row.copy()
    moved[:63] = (row[:63].reshape(21, 3) * 0.5 + np.array([30, 50, 0], np.float32)).reshape(-1)
    moved[WORLD_START:] = row[WORLD_START:] * 3.0 + 0.2
    out = _embedding_session().run(None, {"rows": np.stack([row, moved])})[0]
    np.testing.assert_allclose(out[0, EMBEDDING_START:], out[1, EMBEDDING_START:], atol=1e-4)


def test_canned_gestures_are_in_the_classifiers_order():
    """Google's documented order: a clear fist, open palm and V sign from the reference
    photos come out as Closed_Fist / Open_Palm / Victory where MediaPipe was sure."""
    hands = {h["gesture_folder"]: h for h in json.loads(REFERENCE.read_text())["hands"]}
    rows = np.stack([_row_from_mediapipe(hands["palm"])])
    out = _embedding_session().run(None, {"rows": rows})[0]
    assert assets.CANNED_GESTURES[int(out[0, CANNED_START:].argmax())] == "Open_Palm"


def test_the_gesture_models_are_pinned_and_converted():
    folder = assets.models_dir()
    manifest = json.loads((folder / assets.MANIFEST).read_text())
    assert manifest["gesture_source"] == assets.GESTURE_WHEEL_REQUIREMENT
    for name, sha in assets.GESTURE_MEMBERS.values():
        assert assets.sha256_of(folder / name) == sha == manifest[name]
    assert (folder / assets.GESTURE_WHEEL_LICENCE[1]).read_text().startswith("MIT License")
    assert "Apache License" in (folder / assets.GESTURE_NOTICE).read_text()
    assert hashlib.sha256(assets.embedder_onnx_bytes()).hexdigest() == \
        manifest[assets.EMBEDDER_ONNX]


def test_a_users_own_gesture_task_is_taken_and_recorded(tmp_path):
    """--gesture_task: Google's gesture_recognizer.task (a zip holding
    hand_gesture_recognizer.task, a zip of the two models) is used instead of the wheel."""
    import shutil

    folder = tmp_path / "models"
    shutil.copytree(assets.models_dir(), folder)
    inner = tmp_path / "inner.task"
    with zipfile.ZipFile(inner, "w") as archive:
        for name, _ in assets.GESTURE_MEMBERS.values():
            archive.write(folder / name, name)
    task = tmp_path / "gesture_recognizer.task"
    with zipfile.ZipFile(task, "w") as archive:
        archive.write(inner, assets.GESTURE_INNER_TASK)
    assets.fetch(folder, gesture_task=task)
    manifest = json.loads((folder / assets.MANIFEST).read_text())
    assert manifest["gesture_source"] == str(task)
    assert str(task) in (folder / assets.GESTURE_NOTICE).read_text()
    assets.fetch(folder)  # kept on the next run, not replaced by the wheel's
    assert json.loads((folder / assets.MANIFEST).read_text())["gesture_source"] == str(task)

    not_a_task = tmp_path / "photo.task"
    not_a_task.write_bytes(b"\xff\xd8 not a zip")
    with pytest.raises(UserInputError, match="photo.task: not a gesture_recognizer.task"):
        assets.fetch(folder, gesture_task=not_a_task)
