"""`export`: a trained model -> ONNX or encrypted .etlt, labels.txt, a DeepStream config, a
Triton model repository entry, and with ``--data_type int8`` a calibration tensorfile, a
TensorRT calibration cache and an INT8 ONNX model; with ``--engine_file`` a TensorRT engine.

``-m`` takes .tlt/.keras (converted with tf2onnx) or .onnx/.etlt (used as they are): the latter
path never imports TensorFlow, so an engine can be built on a deployment machine that has only
the ``gpu`` extra.
"""

from __future__ import annotations

import hashlib
import io as _bytes_io
import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from gesturenet_lib import crypto, io, local_files
from gesturenet_lib.errors import MissingRequirement, UserInputError
from gesturenet_lib.export import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCHES,
    calibration,
    deploy_configs,
)
from gesturenet_lib.families.hand_landmarks import detector_export
from gesturenet_lib.models.model_file import check_model_path
from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.specs.experiment import ExperimentSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRequest:
    model: str
    key: str | None
    output: str
    opset: int | None = None   # None: the family's own
    data_type: str = "fp32"
    cal_data_file: str | None = None
    cal_image_dir: str | None = None
    cal_images: tuple[str, ...] = ()   # calibration image files, instead of --cal_image_dir
    cal_cache_file: str = "./cal.bin"
    batches: int = DEFAULT_BATCHES
    batch_size: int = DEFAULT_BATCH_SIZE
    max_batch_size: int = 1
    max_workspace_size: int = 1 << 30
    engine_file: str | None = None
    input_dims: str | None = None
    backend: str = "onnx"
    spec: ExperimentSpec | None = None   # -e: classes and preprocessing of a bare model
    calibrator: str = "entropy"
    storage_uri: str | None = None   # the output folder as a cluster reads it (KServe manifests)


MANIFEST_SUFFIX = ".export.json"
TRITON_ENTRY = f"triton/{deploy_configs.MODEL_NAME}"  # the Triton entry, beside the model
KSERVE_FOLDER = "kserve"  # the InferenceServices, beside the Triton repository


def manifest_path(output: str) -> str:
    """Written last, beside the model: the export's files and their SHA-256. A set without
    it (an export killed half-way) is incomplete; a rerun removes it first."""
    return os.path.splitext(output)[0] + MANIFEST_SUFFIX


def check_against_manifest(model: str) -> None:
    """UserInputError when the export manifest beside ``model`` lists it with another SHA-256
    (the file changed after export: a partial copy, a swap). Entries are matched by file name,
    since a copy (KServe's /mnt/models) moves the folder. No manifest: nothing to check."""
    manifest = manifest_path(model)
    if not io.exists(manifest):
        return
    try:
        files = json.loads(io.read_text(manifest))["files"]
        listed = [v["sha256"] for f, v in files.items()
                  if os.path.basename(f) == os.path.basename(model)]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserInputError(f"{manifest}: not an export manifest (files: {{path: "
                             "{kind, sha256}}})") from None
    if not listed:
        return
    digest = hashlib.sha256(io.read_bytes(model)).hexdigest()
    if digest not in listed:
        raise UserInputError(f"{model}: SHA-256 {digest[:16]}... differs from "
                             f"{listed[0][:16]}... in {manifest}; the file changed after "
                             "export (export again, or copy the whole folder)")


def _write_manifest(path: str, result: ExportResult, missing: Exception | None) -> None:
    files = {}
    for kind, written in sorted(result.files.items()):
        for file in (sorted(io.list_files(written)) if io.is_dir(written) else [written]):
            digest = hashlib.sha256(io.read_bytes(file)).hexdigest()
            files[file] = {"kind": kind, "sha256": digest}
    doc = {"files": files, "not_written": str(missing) if missing else None}
    io.write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    result.files["manifest"] = path


def default_output(model: str) -> str:
    """Without -o/--out_file, TAO's rule: ".etlt is appended to model path"."""
    return f"{model}.etlt"


@dataclass
class ExportResult:
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def relative_to(self, folder: str) -> dict[str, str]:
        """The files, named from ``folder`` (a pipeline's export artifact)."""
        return {kind: os.path.relpath(path, folder) for kind, path in self.files.items()}


def source_onnx(req: ExportRequest, spec) -> tuple[bytes, list[str], Preprocessing]:
    """(FP32 ONNX bytes, class names in index order, preprocessing) of ``-m``; the same
    readers as inference, so a .onnx/.etlt never imports TensorFlow."""
    from gesturenet_lib.families import family, keras_objects, spec_preprocessing
    from gesturenet_lib.models.model_file import metadata_or_spec, read_model_file, read_onnx

    check_model_path(req.model)
    if req.model.endswith((".onnx", ".etlt")):
        data, meta = read_onnx(req.model, req.key)
        classes, prep = metadata_or_spec(meta, spec, spec_preprocessing(spec), req.model)
        return data, sorted(classes, key=classes.get), prep
    if req.model.endswith((".tlt", ".keras")):
        loaded, classes, prep = read_model_file(req.model, req.key, spec,
                                                spec_preprocessing(spec), keras_objects())
        metadata = {"classes": classes, "preprocessing": prep.to_dict(),
                    "base_model": loaded.family}
        onnx_bytes = family(loaded.family).to_onnx(loaded, metadata, req.opset)
        return onnx_bytes, sorted(classes, key=classes.get), prep
    raise UserInputError(f"-m {req.model}: expected a .tlt, .keras, .onnx or .etlt file")


def _model_dims(onnx_bytes: bytes) -> tuple[int, ...]:
    import onnx

    shape = onnx.load_from_string(onnx_bytes).graph.input[0].type.tensor_type.shape
    return tuple(int(d.dim_value) for d in shape.dim[1:])


def _calibration_data(req: ExportRequest, prep: Preprocessing, out_dir: str
                      ) -> tuple[np.ndarray, str]:
    """The calibration tensorfile and its path: reused when it exists, else made from
    --cal_image_dir."""
    needed = req.batch_size * req.batches
    path = req.cal_data_file or io.join(out_dir, "calibration.tensorfile.npy")
    if io.exists(path):
        data = np.load(_bytes_io.BytesIO(io.read_bytes(path)))
        log.info("export: reusing calibration tensorfile %s (%d images)", path, len(data))
        return data, path
    if not req.cal_image_dir and not req.cal_images:
        raise UserInputError("--data_type int8: give --cal_image_dir (or an existing "
                             "--cal_data_file or --cal_cache_file)")
    if req.cal_image_dir and not io.is_dir(req.cal_image_dir):
        raise UserInputError(f"--cal_image_dir {req.cal_image_dir}: folder not found")
    from gesturenet_lib.data.images import images_among
    from gesturenet_lib.errors import RecordError
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    files = list(req.cal_images) or images_among(io.list_files(req.cal_image_dir),
                                                 req.cal_image_dir, "--cal_image_dir")
    tensors = []
    for file in files:
        if len(tensors) == needed:
            break
        try:
            tensors.append(to_input(load_rgb(file), prep))
        except RecordError as err:
            log.warning("export: skipping calibration image %s: %s", file, err)
    if len(tensors) < needed:
        raise UserInputError(
            f"--cal_image_dir {req.cal_image_dir or 'the calibration images'}: {len(tensors)} "
            f"usable images found, "
            f"{needed} needed (--batch_size {req.batch_size} x --batches {req.batches})")
    data = np.stack(tensors)
    buffer = _bytes_io.BytesIO()
    np.save(buffer, data)
    io.write_bytes(path, buffer.getvalue())
    log.info("export: wrote calibration tensorfile %s (%d images)", path, len(data))
    return data, path


def _int8(req: ExportRequest, fp32_onnx: bytes, prep: Preprocessing, out_dir: str,
          stem: str, result: ExportResult) -> bytes:
    """Calibrate (unless the cache exists), write the cache and the INT8 QDQ model."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gesturenet-export-") as tmp:
        fp32_path = os.path.join(tmp, "fp32.onnx")
        with open(fp32_path, "wb") as handle:
            handle.write(fp32_onnx)
        ranges_file = calibration.ranges_path(req.cal_cache_file)
        if io.exists(req.cal_cache_file):
            if not io.exists(ranges_file):
                raise UserInputError(
                    f"--cal_cache_file {req.cal_cache_file}: exists, but not the ONNX Runtime "
                    f"ranges beside it ({ranges_file}) that the CPU INT8 model is made from; "
                    "delete the cache to calibrate again")
            calibration.read_cache(req.cal_cache_file)  # refuse a malformed cache early
            log.info("export: reusing calibration cache %s (calibration skipped)",
                     req.cal_cache_file)
        else:
            data, data_file = _calibration_data(req, prep, out_dir)
            result.files["cal_data_file"] = data_file
            ranges = calibration.calibrate(fp32_path, data, req.batch_size, req.calibrator)
            calibration.write_ranges(ranges_file, ranges)
            calibration.write_cache(req.cal_cache_file, calibration.scales_of(ranges),
                                    req.calibrator)
            log.info("export: wrote calibration cache %s (%d tensors, %s)", req.cal_cache_file,
                     len(ranges), req.calibrator)
        int8_path = os.path.join(tmp, "int8.onnx")
        from gesturenet_lib.families import family
        from gesturenet_lib.models.model_file import read_metadata

        calibration.quantize_with_ranges(fp32_path, int8_path,
                                         calibration.read_ranges(ranges_file), req.calibrator,
                                         family(read_metadata(fp32_onnx).get("base_model")
                                                ).quantize)
        with open(int8_path, "rb") as handle:
            int8_onnx = handle.read()
    target = io.join(out_dir, f"{stem}_int8.onnx")
    io.write_bytes(target, int8_onnx)
    result.files.update(cal_cache=req.cal_cache_file, int8_onnx=target)
    return int8_onnx


def _check_request(req: ExportRequest) -> None:
    """Every flag and output checked before any work (one-line errors naming the flag)."""
    if req.backend not in ("onnx", "tfonnx"):
        raise UserInputError(f"--backend {req.backend}: only onnx is supported (UFF is "
                             "deprecated by NVIDIA and not produced)")
    if req.data_type not in ("fp32", "fp16", "int8"):
        raise UserInputError(f"--data_type {req.data_type}: must be fp32, fp16 or int8")
    if req.calibrator not in calibration.HEADERS:
        raise UserInputError(f"--calibrator {req.calibrator}: must be entropy, percentile or "
                             "minmax")
    if not req.output.endswith((".onnx", ".etlt")):
        raise UserInputError(f"-o {req.output}: must end with .onnx or .etlt")
    if req.output.endswith(".etlt") and not req.key:
        raise UserInputError("-k/--key: needed to encrypt the .etlt (or use -o model.onnx)")
    if min(req.batch_size, req.batches, req.max_batch_size) < 1:
        raise UserInputError("--batch_size, --batches and --max_batch_size must be >= 1")
    outputs = {"-o/--out_file": req.output, "--engine_file": req.engine_file}
    if req.data_type == "int8":
        outputs.update({"--cal_cache_file": req.cal_cache_file,
                        "--cal_data_file": req.cal_data_file})
    for flag, path in outputs.items():
        if path:
            io.check_output(path, flag)


def export(req: ExportRequest) -> ExportResult:
    _check_request(req)
    onnx_bytes, classes, prep = source_onnx(req, req.spec)
    dims = _model_dims(onnx_bytes)
    if req.input_dims:
        try:
            asked = tuple(int(v) for v in req.input_dims.split(","))
        except ValueError:
            raise UserInputError(f"--input_dims {req.input_dims}: expected C,H,W "
                                 "like 3,160,160") from None
        if asked != dims:
            raise UserInputError(f"--input_dims {req.input_dims}: the model's input is "
                                 f"{','.join(map(str, dims))}; export does not resize models")
    result = ExportResult()
    out_dir = io.parent(os.path.abspath(req.output))
    stem = os.path.splitext(os.path.basename(req.output))[0]
    manifest = manifest_path(req.output)
    io.delete(manifest)  # the set is rewritten: it is incomplete until the new manifest
    # Every folder export writes to: the output's own (not its subfolders: it may be a large
    # shared folder), and the whole Triton repository and kserve/ that export owns.
    stale = local_files.remove_stale_temporaries(out_dir)
    for owned in ("triton", KSERVE_FOLDER):
        stale += local_files.remove_stale_temporaries(io.join(out_dir, owned), recursive=True)
    for path in stale:
        log.info("export: removed %s, left by a writer that died", path)
    if req.output.endswith(".etlt"):
        io.write_bytes(req.output, crypto.encrypt(onnx_bytes, req.key, "onnx"))
    else:
        io.write_bytes(req.output, onnx_bytes)
    result.files["model"] = req.output
    io.write_text(io.join(out_dir, "labels.txt"), deploy_configs.nvinfer_labels(classes))
    result.files["labels"] = io.join(out_dir, "labels.txt")
    detector = detector_export.write_detector(out_dir, req.max_batch_size)
    if detector:
        result.files["palm_detector"] = detector
        result.files["palm_detector_triton"] = io.join(out_dir, "triton",
                                                       detector_export.TRITON_NAME)
    else:
        result.notes.append(f"{detector_export.FILE_NAME} not written: the palm detector of "
                            "`make models` is not on this machine")

    if req.data_type == "int8":
        _int8(req, onnx_bytes, prep, out_dir, stem, result)
    missing = None  # what the engine needs and this machine lacks: reported after the rest
    if req.engine_file:
        from gesturenet_lib.export.tensorrt_build import build_engine

        try:
            build_engine(onnx_bytes, req.engine_file, req.data_type, dims, req.max_batch_size,
                         req.max_workspace_size, req.cal_cache_file, req.calibrator,
                         req.batch_size)
            result.files["engine"] = req.engine_file
        except MissingRequirement as err:
            missing = err

    _write_deploy_files(req, result, out_dir, onnx_bytes, classes, prep, dims)
    for note in result.notes:
        log.warning("export: %s", note)
    _write_manifest(manifest, result, missing)
    if missing is not None:
        raise MissingRequirement(f"{missing}; no engine was built, the other files were: "
                                 + ", ".join(result.files.values()))
    return result


def _write_deploy_files(req: ExportRequest, result: ExportResult, out_dir: str,
                        onnx_bytes: bytes, classes: list[str], prep: Preprocessing,
                        dims: tuple[int, ...]) -> None:
    """The DeepStream config and the Triton entry, for the engine when there is one, else for
    the plain ONNX model (an .etlt alone: a config without a model line, and a note)."""
    info = deploy_configs.DeployInfo(classes, prep, dims, req.data_type, req.max_batch_size)
    if "engine" in result.files:
        model_line = (os.path.basename(req.engine_file), "engine")
    elif req.output.endswith(".onnx"):
        model_line = (os.path.basename(req.output), "onnx")
    else:
        model_line = None
        result.notes.append("DeepStream and Triton cannot decrypt .etlt: export again with "
                            "-o model.onnx (onnx-file) or add --engine_file (model-engine-file) "
                            "on a GPU machine")
    calib = os.path.basename(req.cal_cache_file) if req.data_type == "int8" else None
    config_path = io.join(out_dir, "nvinfer_config.txt")
    text = deploy_configs.deepstream_config(info, *(model_line or ("", "onnx")), calib)
    if model_line is None:
        text = text.replace("onnx-file=\n", "# onnx-file / model-engine-file: see the export "
                                            "log (.etlt cannot be read by DeepStream)\n")
    io.write_text(config_path, text)
    result.files["deepstream_config"] = config_path
    if model_line is not None:
        kind = model_line[1]
        triton = io.join(out_dir, TRITON_ENTRY)
        platform = "tensorrt_plan" if kind == "engine" else "onnxruntime_onnx"
        io.write_text(io.join(triton, "config.pbtxt"),
                      deploy_configs.triton_config(info, deploy_configs.MODEL_NAME, platform))
        io.write_text(io.join(triton, "labels.txt"), deploy_configs.labels_txt(classes))
        io.write_bytes(io.join(triton, "1", "model.plan" if kind == "engine" else "model.onnx"),
                       io.read_bytes(req.engine_file) if kind == "engine" else onnx_bytes)
        result.files["triton"] = triton
    _write_kserve(req, result, out_dir)


def _write_kserve(req: ExportRequest, result: ExportResult, out_dir: str) -> None:
    """The InferenceServices, when the folder's cluster address is known."""
    from gesturenet_lib.export import kserve_manifests

    storage = req.storage_uri or (out_dir if io.is_cloud_uri(out_dir) else None)
    if storage is None:
        result.notes.append("no KServe manifests: give --storage_uri (the address a cluster "
                            "reads this folder at: gs://, s3://, pvc://...) or export to gs://")
        return
    info = kserve_manifests.ServiceInfo(
        storage, os.path.basename(req.output), deploy_configs.MODEL_NAME,
        req.output.endswith(".etlt"), TRITON_ENTRY if "triton" in result.files else None)
    folder = io.join(out_dir, KSERVE_FOLDER)
    for name, text in kserve_manifests.manifests(info).items():
        io.write_text(io.join(folder, name), text)
    result.files["kserve"] = folder
