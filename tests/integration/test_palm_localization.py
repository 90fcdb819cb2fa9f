"""The palm detector: in the crop graph (against the NumPy path it mirrors), on crops cut
other ways than dataset_convert's, in the exported graph (opset, TensorRT's operator list,
the detector file), on whole frames (inference --full_frame and evaluate --full_frame) and on
video (inference --video and --sequence, with tracking)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gesturenet_lib import cli
from gesturenet_lib.data.dataset_file import read_dataset_file
from gesturenet_lib.families.hand_landmarks.assets import (
    canned_onnx_bytes,
    embedder_onnx_bytes,
    landmark_onnx_bytes,
    lite_landmark_onnx_bytes,
    palm_onnx_bytes,
)
from gesturenet_lib.families.hand_landmarks.backend import landmark_reader
from gesturenet_lib.families.hand_landmarks.extractor import (
    EXTRACTOR_OUTPUT,
    ROWS,
    Extractor,
    build_extractor,
    from_rows,
)
from gesturenet_lib.families.hand_landmarks.hand_finder import HandFinder, lifted
from gesturenet_lib.families.hand_landmarks.palm_detection import (
    HandRect,
    iou,
    rect_from_landmarks,
)
from gesturenet_lib.families.hand_landmarks.palm_graph import REREAD_OK
from gesturenet_lib.inference.backends import OnnxBackend
from gesturenet_lib.inference.full_frame import CropRule, classify_frames, cut, hand_finder
from gesturenet_lib.inference.loading import load_backend
from gesturenet_lib.inference.run import Source
from gesturenet_lib.inference.video import WINDOWS_EVERY, Frame, HandTracker, Tracking
from gesturenet_lib.models.preprocessing import Preprocessing, load_rgb, to_input
from gesturenet_lib.specs.experiment import HandLandmarks
from tests.conftest import REPO, SPECS
from tests.landmark_sample import convert_sample_for_landmarks

KEY = "palm-test-key"
pytestmark = pytest.mark.slow
# TensorRT 9.2's ONNX operator support matrix (onnx-tensorrt docs/operators.md), the ops the
# exported graphs use, inside an If's branches too: every one listed there as supported (If:
# its two branches' outputs of the same rank and of different names, checked where it is used).
TENSORRT_OPS = {
    "Add", "And", "ArgMax", "Cast", "Clip", "Concat", "Conv", "Div", "Expand", "Gather",
    "GatherElements", "Greater", "GreaterOrEqual", "GridSample", "Identity", "Less", "MatMul",
    "Max", "MaxPool", "Min", "Mul", "Neg", "Not", "OneHot", "Pad", "PRelu", "ReduceMax",
    "ReduceMin", "ReduceProd", "ReduceSum", "Relu", "Reshape", "Resize", "Shape", "Sigmoid",
    "Slice", "Softmax", "Sqrt", "Squeeze", "Sub", "Transpose", "Unsqueeze", "Where", "Gemm",
    "Flatten", "Sum", "Abs", "Exp", "Log", "Pow", "Equal", "Tanh", "Or", "ConstantOfShape",
    "GlobalAveragePool", "ReduceMean", "Split", "BatchNormalization", "If",
}


def _op_types(model) -> set[str]:
    """The ops of an ONNX model (a ModelProto or its bytes), its If branches' included."""
    if isinstance(model, bytes):
        model = onnx.load_from_string(model)

    def of(graph) -> set[str]:
        found = set()
        for n in graph.node:
            found.add(n.op_type)
            for attribute in n.attribute:
                if attribute.HasField("g"):
                    found |= of(attribute.g)
        return found

    return of(model.graph)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return convert_sample_for_landmarks(tmp_path_factory.mktemp("palm"))


@pytest.fixture(scope="module")
def frames(converted):
    """(full image path, annotated hand box) of the first 24 kpi hands."""
    entries = read_dataset_file(str(converted / "workspace/data_landmarks.json")).entries(
        "kpi_set", crops=False, frames=True)
    return [(str(converted / "workspace" / e.full_image_path), e.hand_box())
            for e in entries[:24]]


@pytest.fixture(scope="module")
def trained(converted):
    spec = json.loads((SPECS / "landmark_train_spec.json").read_text())
    spec["trainer"]["finetuning"]["train_epochs"] = 20
    path = converted / "specs" / "palm_train_spec.json"
    path.write_text(json.dumps(spec))
    assert cli.main(["train", "-e", str(path), "-k", KEY]) == 0
    return converted, str(path), str(converted / "workspace/experiments_landmarks/model/model.tlt")


def _extractor(localization: str, second_look_border: float = 0.0) -> Extractor:
    """The crop graph; by default its first look alone (the second look has a test of its
    own)."""
    return Extractor(_extractor_onnx(localization, second_look_border))


def _extractor_onnx(localization: str, second_look_border: float, **second_look) -> bytes:
    """``second_look``: other second_look_* settings than the defaults."""
    return build_extractor(landmark_onnx_bytes(), HandLandmarks(
        localization=localization, second_look_border=second_look_border, **second_look),
        "channels_last",
        palm_onnx_bytes(), embedder_onnx=embedder_onnx_bytes(),
        canned_onnx=canned_onnx_bytes(), lite_onnx=lite_landmark_onnx_bytes())


def _crops(frames, ratio: float) -> np.ndarray:
    prep = Preprocessing(224, 224, 3, "channels_last")
    return np.stack([to_input(cut(load_rgb(path), box, CropRule(True, ratio))[0], prep)
                     for path, box in frames])


def test_the_crop_graph_is_the_numpy_path(frames):
    """The palm detector inside the ONNX graph gives the landmarks HandFinder gives on the same
    crop (decoding, suppression, rotated box, GridSample warp and the way back); the graph
    sees the crop letterboxed, so the finder's closer look (its own, for whole photos) is off."""
    crops = _crops(frames, 2.0)
    raw = _extractor("palm_detector")(crops)
    finder = hand_finder()
    compared = 0
    for crop, row in zip(crops, raw, strict=True):
        hands = finder.find((crop * 255).round().astype(np.uint8), zoom=False)
        if hands and row[63] >= 0.5:
            mine = row[:63].reshape(21, 3)[:, :2]
            assert np.abs(hands[0].landmarks[:, :2] - mine).mean() < 1.5
            compared += 1
    assert compared >= len(frames) * 0.8


def _found_again(paths: list[str], changed) -> tuple[int, int]:
    """(hands found in the photos as they are, of those also found (IoU > 0.5) in
    ``changed(photo)``)."""
    finder = hand_finder()
    hands = same = 0
    for path in paths:
        rgb = load_rgb(path)
        boxes = [h.box(rgb.shape[1], rgb.shape[0]) for h in finder.find(rgb)]
        found = [h.box(rgb.shape[1], rgb.shape[0]) for h in finder.find(changed(rgb))]
        hands += len(boxes)
        same += sum(bool(found) and iou(np.array(b, np.float64),
                                        np.array(found, np.float64)).max() > 0.5 for b in boxes)
    return hands, same


def test_hands_are_found_in_a_dim_photo(frames):
    """A photo taken with a tenth of the light (sensor noise added) is lifted before the
    networks see it: most of its hands are found where they are in the lit photo."""
    rng = np.random.default_rng(0)
    lit, same = _found_again(list(dict(frames))[:8], lambda rgb: np.clip(
        rgb * 0.1 + rng.normal(0, 1.5, rgb.shape), 0, 255).astype(np.uint8))
    assert lit >= 8 and same >= 0.5 * lit, (same, lit)


def test_hands_are_found_in_a_gray_photo(frames):
    """A grayscale photo (an infrared camera, black and white) is tinted before the palm
    detector sees it: most of its hands are found where they are in the colour photo."""
    colour, same = _found_again(list(dict(frames))[:12], lambda rgb: cv2.cvtColor(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB))
    assert colour >= 12 and same >= 0.6 * colour, (same, colour)


def test_a_small_hand_alone_in_a_photo_is_found_by_looking_closer():
    """A sample photo of someone standing, her only hand a 40x55 px thumbs-down at her chest:
    neither the letterbox nor the square windows give the detector enough of it; the closer
    look (zoom tiles) finds it where HaGRID's annotators boxed it."""
    rgb = load_rgb(str(REPO / "data" / "hagrid-sample" / "dataset" / "dislike"
                       / "fea18986-f69b-45b3-9ee5-9f56e9e3d2b7.jpg"))
    h, w = rgb.shape[:2]
    x, y, bw, bh = 0.49775051, 0.32000772, 0.07782124, 0.08132018   # manifest.csv
    annotated = np.array([x * w, y * h, (x + bw) * w, (y + bh) * h])
    finder = hand_finder()
    assert not finder.find(rgb, zoom=False)
    hands = finder.find(rgb)
    assert len(hands) == 1 and hands[0].presence >= 0.9
    assert iou(annotated, np.array([hands[0].box(w, h)], np.float64))[0] > 0.5


def test_the_crop_graph_lifts_a_dim_crop_as_the_finder_does(frames):
    """A crop from a dim room goes through the exported graph as the hand finder sees a dim
    photo (lifted): the same hands found, the same landmarks, as for the crop lifted first."""
    crops = _crops(frames, 1.3)
    rng = np.random.default_rng(0)
    dim = np.clip(crops * 0.08 + rng.normal(0, 1.5 / 255, crops.shape), 0, 1)
    dim = (dim * 255).round().astype(np.uint8)
    extractor = _extractor("palm_detector")
    graph = extractor(dim.astype(np.float32) / 255)
    first = extractor(np.stack([lifted(c) for c in dim]).astype(np.float32) / 255)
    found, found_first = graph[:, 63] >= 0.5, first[:, 63] >= 0.5
    assert found.mean() >= 0.75 and (found == found_first).mean() >= 0.9
    both = found & found_first
    xy, xy_first = (rows[both, :63].reshape(-1, 21, 3)[..., :2] for rows in (graph, first))
    assert np.abs(xy - xy_first).mean() < 1.5   # pixels of 224


def test_palm_detector_finds_hands_in_loose_and_tight_crops(frames):
    """Crops cut another way than dataset_convert's 1.3x: the box as annotated (fingers at the
    edge) and 3x (a small hand): the palm detector finds the hand where the views miss it."""
    loose = _crops(frames, 3.0)
    views = _extractor("views")(loose)
    palm = _extractor("palm_detector")(loose)
    assert (palm[:, 63] >= 0.5).mean() >= 0.9
    assert (palm[:, 63] >= 0.5).sum() > (views[:, 63] >= 0.5).sum()
    tight = _extractor("palm_detector")(_crops(frames, 1.0))
    assert (tight[:, 63] >= 0.5).mean() >= 0.9


def test_each_crop_is_judged_alone_in_a_batch(frames):
    """The fallback views and the second look run for a whole batch when one crop needs them;
    each crop's result still depends on that crop alone."""
    extractor = _extractor("palm_detector", HandLandmarks().second_look_border)
    crops = np.concatenate([_crops(frames[:3], 1.3), np.zeros((1, 224, 224, 3), np.float32)])
    together = extractor(crops)
    alone = np.concatenate([extractor(c[None]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert together[3, 63] < 0.5 and (together[:3, 63] >= 0.5).all()


def test_export_is_one_graph_at_opset_16_with_tensorrt_ops_and_the_detector(trained, tmp_path,
                                                                            capsys):
    root, spec, model = trained
    out = tmp_path / "export" / "model.onnx"
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(out)]) == 0
    graph = onnx.load(str(out))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) == 16
    assert [o.name for o in graph.graph.output] == ["predictions", "hand_found"]
    used = _op_types(graph)
    assert "GridSample" in used and not used - TENSORRT_OPS, used - TENSORRT_OPS
    detector = onnx.load(str(tmp_path / "export" / "palm_detector.onnx"))
    meta = json.loads({p.key: p.value for p in detector.metadata_props}[
        "gesturenet_palm_detector"])
    assert meta["anchors"]["count"] == 2016 and meta["hand_box"]["scale"] == 2.6
    assert not _op_types(detector) - TENSORRT_OPS
    config = (tmp_path / "export/triton/palm_detector/config.pbtxt").read_text()
    assert 'name: "palm_detector"' in config and "dims: [ 192, 192, 3 ]" in config
    assert "dims: [ 2016, 18 ]" in config and "dims: [ 2016, 1 ]" in config
    assert (tmp_path / "export/triton/palm_detector/1/model.onnx").read_bytes() == \
        (tmp_path / "export/palm_detector.onnx").read_bytes()
    capsys.readouterr()
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(tmp_path / "x.onnx"),
                     "--target_opset", "13"]) == 2
    assert "exports at opset 16" in capsys.readouterr().err


def test_inference_full_frame_one_record_per_hand(trained, frames, tmp_path, capsys):
    root, spec, model = trained
    images = tmp_path / "images"
    images.mkdir()
    for i, (path, _) in enumerate(frames[:6]):
        (images / f"frame{i}.jpg").write_bytes(open(path, "rb").read())
    cv2.imwrite(str(images / "wall.png"), np.full((300, 400, 3), 200, np.uint8))
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out, previews = tmp_path / "results", tmp_path / "previews"
    assert cli.main(["inference", "-e", spec, "-m", model, "-k", KEY, "--image_dir",
                     str(images), "--results_dir", str(out), "--full_frame", "--previews",
                     str(previews), "--bbox_enlarge_ratio", "1.3"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_path = {}
    for r in records:
        by_path.setdefault(r["path"], []).append(r)
    assert set(by_path) == {f"frame{i}.jpg" for i in range(6)} | {"wall.png", "broken.jpg"}
    assert by_path["wall.png"] == [{"path": "wall.png", "image_size": [400, 300], "hands": 0}]
    assert "error" in by_path["broken.jpg"][0]
    hands = [r for r in records if "hand_index" in r]
    assert len(hands) >= 6
    for r in hands:
        assert len(r["landmarks"]) == 21 and r["presence"] >= 0.5
        assert r["class_name"] in ("thumbs_up", "fist", "stop", "ok", "two", "random")
        x0, y0, x1, y1 = r["box"]
        assert 0 <= x0 < x1 <= r["image_size"][0] and 0 <= y0 < y1 <= r["image_size"][1]
        assert set(r["rotated_box"]) == {"center", "side", "rotation_degrees"}
    lines = (out / "results.txt").read_text().splitlines()
    assert "wall.png -1 no_hand" in lines and len(lines) == len(records)
    preview = cv2.imread(str(previews / "frame0.jpg"))
    assert preview.shape[:2] == load_rgb(str(images / "frame0.jpg")).shape[:2]
    assert (previews / "wall.jpg").exists() and not (previews / "broken.jpg").exists()


def test_photos_searched_at_once_come_back_as_one_after_the_other(trained, frames, tmp_path):
    """A folder is searched several photos at once (one per core, one thread per network
    run): the same hands, boxes and classes, in the same order, as one photo after the other;
    an unreadable photo keeps its place; progress counts every photo once, in order."""
    _, _, model = trained
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    paths = list(dict(frames))[:7]
    sources = ([Source(p, p) for p in paths[:3]] + [Source(str(tmp_path / "broken.jpg"), "b")]
               + [Source(p, p) for p in paths[3:]])
    tlt, rule = load_backend(model, KEY, None), CropRule(True, 1.3)
    one = classify_frames(sources, hand_finder(), tlt, rule)
    counted: list[int] = []
    at_once = classify_frames(sources, hand_finder(workers=3), tlt, rule, workers=3,
                              progress=lambda n, total: counted.append(n))
    assert counted == list(range(1, len(sources) + 1))
    assert [r.source for r in at_once] == sources
    assert at_once[3].error == one[3].error and at_once[3].error
    assert sum(len(r.hands) for r in one) >= 7
    for a, b in zip(one, at_once, strict=True):
        assert [h.index for h in a.hands] == [h.index for h in b.hands]
        np.testing.assert_allclose([h.box for h in a.hands], [h.box for h in b.hands], atol=1)
        np.testing.assert_allclose([h.probabilities for h in a.hands],
                                   [h.probabilities for h in b.hands], atol=1e-3)


def test_a_whole_photo_is_classified_from_the_landmarks_the_finder_read(trained, frames,
                                                                          tmp_path):
    """The single pass (the head on the finder's landmarks) calls each hand as the crop path
    does, from the .tlt (its Keras head run as ONNX, to the same probabilities) and from the
    exported .onnx alike; a phone-sized version of a photo,
    decoded reduced, gives the same hands in its own pixels. A model without the landmark
    rows has no landmark path."""
    root, spec, model = trained
    exported = tmp_path / "model.onnx"
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(exported)]) == 0
    sources = [Source(path, path) for path, _ in dict(frames).items()][:8]
    finder, rule = hand_finder(), CropRule(True, 1.3)
    tlt, onnx_model = load_backend(model, KEY, None), load_backend(str(exported), KEY, None)
    single = classify_frames(sources, finder, tlt, rule)
    crops = classify_frames(sources, finder, tlt, rule, from_landmarks=False)
    from_onnx = classify_frames(sources, finder, onnx_model, rule)
    hands = [(a, b, c) for ra, rb, rc in zip(single, crops, from_onnx, strict=True)
             for a, b, c in zip(ra.hands, rb.hands, rc.hands, strict=True)]
    assert len(hands) >= 8
    assert all(a.box == b.box == c.box for a, b, c in hands)
    np.testing.assert_allclose([a.probabilities for a, _, _ in hands],
                               [c.probabilities for _, _, c in hands], atol=2e-3)
    same = sum(a.index == b.index for a, b, _ in hands)
    assert same >= 0.85 * len(hands), (same, len(hands))
    rows = np.stack([a.hand.raw for a, _, _ in hands])
    after_rows = ort.InferenceSession(from_rows(tlt.extractor_onnx, [EXTRACTOR_OUTPUT]))
    keras_probs = tlt.keras_head(after_rows.run(None, {ROWS: rows})[0]).numpy()
    np.testing.assert_allclose(landmark_reader(tlt)(rows)[0], keras_probs, atol=1e-5)

    big = cv2.resize(cv2.imread(sources[0].path), None, fx=5, fy=5)   # 14-18 megapixels
    cv2.imwrite(str(tmp_path / "phone.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    phone = classify_frames([Source(str(tmp_path / "phone.jpg"), "phone.jpg")], finder, tlt,
                            rule, keep_images=True)[0]
    assert phone.size == (big.shape[1], big.shape[0])
    assert max(phone.image.shape[:2]) < max(big.shape[:2])   # decoded reduced
    assert [h.index for h in phone.hands] == [h.index for h in single[0].hands]
    for mine, native in zip(phone.hands, single[0].hands, strict=True):
        scaled = np.array(native.box, np.float64) * 5
        assert iou(scaled, np.array([mine.box], np.float64))[0] > 0.8
    on_image = phone.hands_on_image()
    assert all(h.box[2] <= phone.image.shape[1] for h in on_image)

    identity = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "plain",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])]))
    plain = OnnxBackend(identity.SerializeToString(), {"a": 0, "b": 1},
                        Preprocessing(224, 224, 3, "channels_last"), "plain.onnx")
    assert landmark_reader(plain) is None and landmark_reader(tlt) is not None


def test_evaluate_full_frame_scores_hands_and_gestures(trained, capsys):
    root, spec, model = trained
    assert cli.main(["evaluate", "-e", spec, "-m", model, "-k", KEY, "--full_frame",
                     "--bbox_enlarge_ratio", "1.3"]) == 0
    results = root / "workspace/experiments_landmarks/results"
    metrics = json.loads((results / "metrics.json").read_text())
    hands = metrics["full_frame"]
    kpi = read_dataset_file(str(root / "workspace/data_landmarks.json")).entries(
        "kpi_set", crops=False, frames=True)
    assert hands["annotated_hands"] == len(kpi)
    assert hands["hand_recall"] >= 0.9 and hands["hand_precision"] >= 0.9
    assert hands["matched_hands"] + hands["missed_hands"] == hands["annotated_hands"]
    assert hands["matched_hands"] + hands["false_hands"] == hands["found_hands"]
    assert sum(m["support"] for m in metrics["per_class"].values()) == hands["matched_hands"]
    assert metrics["macro_avg"]["f1"] > 0.6 and metrics["mode"] == "full_frame"
    page = (results / "report.html").read_text()
    assert f'data-key="full_frame.hand_recall">{hands["hand_recall"]:.4f}<' in page
    assert page.count("<figure>") >= hands["missed_hands"]
    assert "hands:" in capsys.readouterr().out


def _pan_clip(path: str, frame: str, count: int = 40) -> None:
    """A slow pan over a photo, written with OpenCV (MPEG-4): 480x360 windows moving right."""
    image = cv2.imread(frame)
    h, w = image.shape[:2]
    side_w, side_h = int(w * 0.9), int(h * 0.9)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (480, 360))
    for k in range(count):
        x = round((w - side_w) * k / (count - 1))
        writer.write(cv2.resize(image[0:side_h, x:x + side_w], (480, 360)))
    writer.release()


def test_video_tracks_each_hand_and_runs_the_detector_rarely(trained, frames, tmp_path):
    """A clip panned over a kpi photo: a record per hand per frame, one track id held across
    the frames, the palm detector on few of them, the annotated video beside."""
    root, spec, model = trained
    _pan_clip(str(tmp_path / "pan.mp4"), frames[0][0])
    out, previews = tmp_path / "results", tmp_path / "previews"
    assert cli.main(["inference", "-e", spec, "-m", model, "-k", KEY, "--video",
                     str(tmp_path / "pan.mp4"), "--results_dir", str(out), "--previews",
                     str(previews), "--detect_every", "15"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted({r["frame"] for r in records}) == list(range(40))
    hands = [r for r in records if "track" in r]
    assert len({r["frame"] for r in hands}) >= 36
    tracks = [r["track"] for r in hands]
    assert max(set(tracks), key=tracks.count) == 0 and tracks.count(0) >= 36
    assert sum(r["detected"] for r in hands) <= 6   # the first frame and every 15th
    assert all(r["time_s"] == pytest.approx(r["frame"] / 30, abs=1e-3) for r in hands)
    video = cv2.VideoCapture(str(previews / "pan.mp4"))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == 40
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (480, 360)
    assert not list(previews.glob(".*"))   # no partial file left


def test_video_without_a_hand_looks_through_the_windows_every_few_frames(trained, frames):
    """While nothing is tracked, the detector sees every frame letterboxed and the square
    windows every WINDOWS_EVERY-th frame, from the first; a hand that comes into view is
    found in its first frame and tracked."""
    root, spec, model = trained
    finder, searched = hand_finder(), []
    find = finder.find

    def recorded(rgb, with_windows=True, zoom=True):
        searched.append(with_windows)
        assert not zoom   # a video never zooms
        return find(rgb, with_windows, zoom)

    finder.find = recorded
    tracker = HandTracker(finder, load_backend(model, KEY, None), CropRule(True, 1.3),
                          Tracking())
    empty = np.full((360, 640, 3), 90, np.uint8)   # 16:9: the windows exist
    n = 2 * WINDOWS_EVERY + 1
    assert all(not tracker.step(Frame(k, k / 30, empty)).hands for k in range(n))
    assert searched == [k % WINDOWS_EVERY == 0 for k in range(n)]
    hand = cv2.cvtColor(cv2.imread(frames[0][0]), cv2.COLOR_BGR2RGB)
    assert tracker.step(Frame(n, n / 30, hand)).hands
    assert tracker.step(Frame(n + 1, (n + 1) / 30, hand)).hands
    assert len(searched) == n + 1   # the hand was tracked into the last frame


def test_video_from_a_phone_the_gesture_inside_its_labelled_span(trained, tmp_path):
    """A real phone clip (HEVC, 720x1280, someone else's camera): in its first 0.9 s, labelled
    "stop", a hand is found and called stop in most frames."""
    root, spec, model = trained
    clip = REPO / "data" / "videos" / "dandan1232_test.mp4"
    out = tmp_path / "results"
    assert cli.main(["inference", "-e", spec, "-m", model, "-k", KEY, "--video", str(clip),
                     "--results_dir", str(out), "--max_frames", "27", "--smooth", "3"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records if "track" not in r] == [] and len(records) >= 27
    assert records[0]["image_size"] == [720, 1280]
    called = [r["class_name"] for r in records]
    assert called.count("stop") >= 0.8 * 27, called


def test_image_sequence_in_number_order_and_a_broken_frame_goes_on(trained, frames, tmp_path):
    root, spec, model = trained
    images = tmp_path / "frames"
    images.mkdir()
    data = open(frames[0][0], "rb").read()
    for n in (1, 2, 3, 10, 11):
        (images / f"frame{n}.jpg").write_bytes(data)
    (images / "frame4.jpg").write_bytes(data[:len(data) // 3])   # cut short
    out = tmp_path / "results"
    assert cli.main(["inference", "-e", spec, "-m", model, "-k", KEY, "--image_dir",
                     str(images), "--sequence", "--results_dir", str(out)]) == 0
    lines = (out / "results.txt").read_text().splitlines()
    frames_seen = [int(line.split()[1]) for line in lines]
    assert sorted(set(frames_seen)) == list(range(6))
    broken = [line for line in lines if " error " in line]
    assert len(broken) == 1 and broken[0].startswith("frames 3 -1 error frame4.jpg:")
    assert all(" -1 " not in line for line in lines if " error " not in line)


@pytest.mark.parametrize("case", ["missing", "not_a_video", "sequence_without_dir"])
def test_bad_video_input_is_one_line_with_exit_2(trained, tmp_path, capsys, case):
    root, spec, model = trained
    (tmp_path / "notes.mp4").write_text("not a video")
    extra = {"missing": ["--video", str(tmp_path / "none.mp4")],
             "not_a_video": ["--video", str(tmp_path / "notes.mp4")],
             "sequence_without_dir": ["--sequence"]}[case]
    capsys.readouterr()
    assert cli.main(["inference", "-e", spec, "-m", model, "-k", KEY, "--results_dir",
                     str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("--video" in err[0] or "--sequence" in err[0]), err


def test_the_box_from_landmarks_holds_the_hand_in_the_next_frame(frames):
    """MediaPipe's tracking step: reading a hand again at the box its own landmarks give
    finds it again, at nearly the same landmarks."""
    finder = hand_finder()
    for path, _ in frames[:6]:
        rgb = load_rgb(path)
        for hand in finder.find(rgb):
            again = finder.hands_at(rgb, [rect_from_landmarks(hand.landmarks)], [1.0])[0]
            assert again is not None
            size = np.ptp(hand.landmarks[:, :2], axis=0).max()
            assert np.abs(again.landmarks[:, :2] - hand.landmarks[:, :2]).mean() < 0.1 * size


def test_a_left_hand_reads_as_the_mirrored_right_hand(frames):
    """The head's inputs need no mirroring augmentation: a hand's mirror image (landmarks and
    world landmarks flipped left to right, handedness flipped) gets the same embedding and
    canned scores from the frozen part after the landmark network, and the network gives a
    flipped crop the flipped handedness."""
    import onnxruntime as ort

    from gesturenet_lib.families.hand_landmarks.extractor import (
        EXTRACTOR_OUTPUT,
        ROWS,
        from_rows,
    )
    from gesturenet_lib.families.hand_landmarks.layout import (
        CANNED_START,
        EMBEDDING_START,
        HANDEDNESS,
        NET_ROW,
        POINTS_END,
        PRESENCE,
        WORLD_START,
    )

    extractor_onnx = build_extractor(landmark_onnx_bytes(), HandLandmarks(), "channels_last",
                                     palm_onnx_bytes(), embedder_onnx=embedder_onnx_bytes(),
                                     canned_onnx=canned_onnx_bytes(),
                                     lite_onnx=lite_landmark_onnx_bytes())
    crops = _crops(frames[:12], 1.3)
    raw = Extractor(extractor_onnx)(crops)
    flipped = Extractor(extractor_onnx)(crops[:, :, ::-1, :])
    both = (raw[:, PRESENCE] >= 0.5) & (flipped[:, PRESENCE] >= 0.5)
    assert both.sum() >= 8
    rows = raw[both, :NET_ROW].copy()
    for start in (0, WORLD_START):
        rows[:, start:start + POINTS_END:3] *= -1.0
    rows[:, HANDEDNESS] = 1.0 - rows[:, HANDEDNESS]
    after_rows = ort.InferenceSession(from_rows(extractor_onnx, [EXTRACTOR_OUTPUT]),
                                      providers=["CPUExecutionProvider"])
    mirrored = after_rows.run(None, {ROWS: rows})[0]
    np.testing.assert_allclose(mirrored[:, EMBEDDING_START:], raw[both, EMBEDDING_START:],
                               atol=1e-4)
    assert (np.round(flipped[both, HANDEDNESS]) != np.round(raw[both, HANDEDNESS])).all()
    assert (flipped[both, CANNED_START:].argmax(1) == raw[both, CANNED_START:].argmax(1)).mean() \
        >= 0.9


def test_upright_first_reads_a_sure_upright_crop_as_it_is_and_any_other_by_the_palm(frames):
    """``localization: upright_first``: a crop where the network is sure of an upright hand
    filling it gets the crop's own landmarks, any other the palm detector's path; a crop's
    result does not depend on the rest of its batch; the graph holds only TensorRT's ops."""
    def extractor(localization: str) -> bytes:
        return build_extractor(landmark_onnx_bytes(), HandLandmarks(
            localization=localization, second_look_border=0.0), "channels_last",
            palm_onnx_bytes(), embedder_onnx=embedder_onnx_bytes(),
            canned_onnx=canned_onnx_bytes())

    first_onnx = extractor("upright_first")
    first, palm, plain = (Extractor(first_onnx), Extractor(extractor("palm_detector")),
                          Extractor(extractor("none")))
    for ratio, least_upright in ((1.3, 0.4), (3.0, 0.0)):
        crops = _crops(frames, ratio)
        got, by_palm, as_is = first(crops), palm(crops), plain(crops)
        upright = np.all(np.isclose(got, as_is, atol=1e-3), axis=1)
        palmed = np.all(np.isclose(got, by_palm, atol=1e-3), axis=1)
        assert (upright | palmed).all()
        assert upright.mean() >= least_upright
        one_by_one = np.concatenate([first(crops[i:i + 1]) for i in range(len(crops))])
        np.testing.assert_allclose(one_by_one, got, atol=2e-3)
    used = _op_types(first_onnx)
    assert not used - TENSORRT_OPS, used - TENSORRT_OPS


def test_landmarks_first_reads_the_hand_in_the_box_the_lite_network_gives(frames):
    """``localization: landmarks_first``: where the lite landmark network finds the hand in
    the crop, the full network's landmarks are read in the box the lite landmarks give (as
    the NumPy twin reads them: the video tracker's step); any other crop gets the palm
    detector's path; many loose (2.0x) crops are read that way; a crop's result does not
    depend on the rest of its batch; the graph holds only TensorRT's ops."""
    def extractor(localization: str) -> bytes:
        return build_extractor(landmark_onnx_bytes(), HandLandmarks(
            localization=localization, second_look_border=0.0), "channels_last",
            palm_onnx_bytes(), embedder_onnx=embedder_onnx_bytes(),
            canned_onnx=canned_onnx_bytes(), lite_onnx=lite_landmark_onnx_bytes())

    graph = onnx.load_from_string(extractor("landmarks_first"))
    graph.graph.output.append(onnx.helper.make_tensor_value_info(REREAD_OK, onnx.TensorProto.BOOL,
                                                                 None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    palm = Extractor(extractor("palm_detector"))
    lite = HandFinder(palm_onnx_bytes(), lite_landmark_onnx_bytes())
    full = HandFinder(palm_onnx_bytes(), landmark_onnx_bytes())
    whole = HandRect(112.0, 112.0, 224.0, 0.0)   # the 224x224 crop as it is
    crops = _crops(frames, 2.0)
    got, reread = session.run(None, {"input_1": crops})
    by_palm = palm(crops)
    apart = []   # pixels between the graph's landmarks and the twin's, per re-read crop
    for crop, row, was_reread, palm_row in zip(crops, got, reread[:, 0], by_palm, strict=True):
        if not was_reread:
            np.testing.assert_allclose(row, palm_row, atol=1e-3)
            continue
        pixels = (crop * 255).round().astype(np.uint8)
        placed = lite.read(pixels, [whole])[0]
        expected = full.read(pixels, [rect_from_landmarks(placed[:63].reshape(21, 3))])[0]
        assert expected[63] >= 0.4   # GridSample and warpAffine differ by a little
        apart.append(np.abs(expected[:63].reshape(21, 3)[:, :2]
                            - row[:63].reshape(21, 3)[:, :2]).mean())
    assert reread.mean() >= 0.3, reread.mean()   # 9 of these 24 hands (random ones included)
    assert np.mean(apart) < 1.5 and max(apart) < 3.0, apart
    one_by_one = np.concatenate([session.run(None, {"input_1": crops[i:i + 1]})[0]
                                 for i in range(len(crops))])
    np.testing.assert_allclose(one_by_one, got, atol=2e-3)
    used = _op_types(graph)
    assert not used - TENSORRT_OPS, used - TENSORRT_OPS


# Hands of the sample (their HaGRID boxes, pixels) that the first look is not sure of when
# the box is cut as it is, made square: two fists and two thumbs-up, fingers at the edge.
TIGHT_HANDS = (("fist/d1167d45-e011-41b9-9069-15e94a9ac19c", (140, 168, 239, 263)),
               ("like/87854d2f-aa35-4d61-9966-554028c297b2", (160, 330, 219, 397)),
               ("fist/4220e9cd-9753-4641-b5d4-e5a9ac15a53c", (563, 143, 643, 216)),
               ("like/5cd98fd0-6bce-46b5-9848-96e6a4300304", (248, 252, 279, 297)))


def _second_look_bar(rows: np.ndarray, settings: HandLandmarks) -> np.ndarray:
    """The presence under which a crop gets the second look, from the first look's rows:
    second_look_below_at_edge for a hand with a landmark within second_look_edge of the side
    from the crop's edge (it fills its crop), else second_look_below."""
    xy = rows[:, :63].reshape(-1, 21, 3)[..., :2]
    room = np.minimum(xy.min(axis=(1, 2)), 224 - xy.max(axis=(1, 2)))
    return np.where(room < settings.second_look_edge * 224, settings.second_look_below_at_edge,
                    settings.second_look_below)


@pytest.mark.parametrize("mode", ["edge", "constant"])
def test_a_hand_that_fills_its_crop_gets_a_second_look_with_room_around_it(frames, mode):
    """Tight crops (the annotated box made square): where the first look is not sure of the
    hand (presence under second_look_below, or under second_look_below_at_edge for a hand
    with a landmark near the crop's edge), the graph looks again at the crop on a border
    (its edge pixels repeated, or black) and keeps the surer answer, its landmarks mapped
    back into the crop's frame (as the first look gives them on the same bordered crop made
    by OpenCV); a crop the first look is sure enough of keeps the first look's row, in the
    same batch (a small hand in a loose crop is held to the lower bar); the graph holds only
    TensorRT's ops."""
    sample = REPO / "data" / "hagrid-sample" / "dataset"
    prep = Preprocessing(224, 224, 3, "channels_last")
    tight = [to_input(cut(load_rgb(str(sample / f"{name}.jpg")), box, CropRule(True, 1.0))[0],
                      prep) for name, box in TIGHT_HANDS]
    crops = np.concatenate([np.stack(tight), _crops(frames[:8], 1.0), _crops(frames[:8], 3.0)])
    settings = HandLandmarks(second_look_border_mode=mode)
    border = settings.second_look_border
    first = _extractor("landmarks_first")
    both_onnx = _extractor_onnx("landmarks_first", border, second_look_border_mode=mode)
    once, twice = first(crops), Extractor(both_onnx)(crops)
    pixels = int(round(border * 224))
    fill = cv2.BORDER_REPLICATE if mode == "edge" else cv2.BORDER_CONSTANT
    bordered = np.stack([cv2.resize(cv2.copyMakeBorder(c, *(pixels,) * 4, fill, value=0),
                                    (224, 224)) for c in crops])
    again = first(bordered)
    bar = _second_look_bar(once, settings)
    taken = (once[:, 63] < bar) & (again[:, 63] > once[:, 63])
    assert taken[:len(tight)].all(), (once[:, 63], again[:, 63])
    assert (twice[:len(tight), 63] >= 0.7).all()   # first look: 0.06-0.72
    loose = (bar == settings.second_look_below) & (once[:, 63] < settings.second_look_below_at_edge)
    assert loose[-8:].any()   # a small hand in a loose (3.0x) crop, left alone at 0.9-0.99
    np.testing.assert_allclose(twice[~taken], once[~taken], atol=2e-3)
    scale = (224 + 2 * pixels) / 224
    mapped = again[taken, :63].reshape(-1, 21, 3) * scale - np.array([pixels, pixels, 0])
    # OpenCV's resize and ONNX's Resize differ by a little
    assert np.abs(twice[taken, :63].reshape(-1, 21, 3)[..., :2] - mapped[..., :2]).mean() < 1.5
    np.testing.assert_allclose(twice[taken, 63], again[taken, 63], atol=0.05)
    used = _op_types(both_onnx)
    assert not used - TENSORRT_OPS, used - TENSORRT_OPS
    # the second look is an If: nothing of it runs where no crop needs it (TensorRT wants the
    # branches' outputs of one rank and of different names)
    second_look = [n for n in onnx.load_from_string(both_onnx).graph.node if n.op_type == "If"]
    assert len(second_look) == 1
    branches = {a.name: a.g for a in second_look[0].attribute}
    outputs = [branches[b].output[0].name for b in ("then_branch", "else_branch")]
    assert outputs[0] != outputs[1] and "GridSample" in _op_types(
        onnx.helper.make_model(branches["then_branch"]))
    # both bars at 1.0: every crop is looked at again, the surer row kept
    always = Extractor(_extractor_onnx("landmarks_first", border, second_look_below=1.0,
                                       second_look_below_at_edge=1.0,
                                       second_look_border_mode=mode))(crops)
    surer = again[:, 63] > once[:, 63]
    assert (surer & ~taken).any()   # a crop the default bar leaves alone
    np.testing.assert_allclose(always[surer, 63], again[surer, 63], atol=0.05)
    np.testing.assert_allclose(always[~surer], once[~surer], atol=2e-3)
