"""export: a trained model -> ONNX or .etlt, labels.txt, DeepStream's nvinfer config, a Triton
model repository entry, KServe manifests, the palm detector of a hand_landmarks model; INT8:
the calibration tensorfile, a TensorRT calibration cache and a quantized ONNX; on a GPU, a
TensorRT engine.

The exporting is ``export.exporter``; this task adds the locations: gs:// staged (calibration
files reused when they exist there), and a pipeline's artifacts (INT8 calibrated on the
dataset's training crops)."""

from __future__ import annotations

from dataclasses import replace

from gesturenet_lib import io
from gesturenet_lib.data.dataset_file import dataset_json, read_dataset_file
from gesturenet_lib.data.splits import TRAIN
from gesturenet_lib.export import DEFAULT_BATCHES
from gesturenet_lib.export.calibration import ranges_path
from gesturenet_lib.export.exporter import ExportRequest, ExportResult, default_output, export
from gesturenet_lib.tasks.local_copies import LocalCopies, run_staged
from gesturenet_lib.training.trainer import model_path

__all__ = ["ExportRequest", "ExportResult", "default_output", "on_artifacts", "run"]

CALIBRATION_CACHE = "cal.bin"  # the calibration cache's name in a pipeline's export artifact
CALIBRATION_BATCH = 16


def on_artifacts(model_dir: str, dataset_dir: str, key: str, export_dir: str,
                 data_type: str = "fp32", output_name: str = "model.onnx",
                 calibration_images: int = 64) -> ExportRequest:
    """A pipeline step's request: the model artifact's model.tlt into ``export_dir``; INT8
    calibrates on the first ``calibration_images`` training crops of the dataset artifact."""
    images: tuple[str, ...] = ()
    if data_type == "int8":
        crops = read_dataset_file(dataset_json(dataset_dir)).entries(TRAIN)
        images = tuple(io.join(dataset_dir, e.bbox_path) for e in crops[:calibration_images])
    batch_size = max(1, min(CALIBRATION_BATCH, len(images))) if images else CALIBRATION_BATCH
    batches = max(1, calibration_images // batch_size) if images else DEFAULT_BATCHES
    return ExportRequest(model=model_path(model_dir), key=key,
                         output=io.join(export_dir, output_name), data_type=data_type,
                         cal_images=images,
                         cal_cache_file=io.join(export_dir, CALIBRATION_CACHE),
                         batch_size=batch_size, batches=batches)


def run(request: ExportRequest) -> ExportResult:
    req = request

    def on_local(copies: LocalCopies) -> ExportRequest:
        outputs = [io.parent(req.output), req.cal_data_file, req.cal_cache_file,
                   req.engine_file]
        for path in outputs:  # before any download
            if path and io.is_cloud_uri(path):
                io.check_output(path, "export output", folder=path == outputs[0])
        cache = req.cal_cache_file
        if cache and io.is_cloud_uri(cache):
            copies.pull_if_exists(ranges_path(cache))
            copies.output(ranges_path(cache))
        local = replace(
            req, model=copies.pull(req.model), cal_image_dir=copies.pull(req.cal_image_dir),
            cal_images=tuple(copies.pull(p) for p in req.cal_images),
            cal_data_file=copies.pull_if_exists(req.cal_data_file),
            cal_cache_file=copies.pull_if_exists(cache),
            output=copies.local(req.output), engine_file=copies.local(req.engine_file),
            storage_uri=req.storage_uri or (io.parent(req.output)
                                            if io.is_cloud_uri(req.output) else None))
        for path in outputs:
            copies.output(path)
        return local

    return run_staged(req, (req.model, req.output, req.cal_image_dir, *req.cal_images,
                            req.cal_data_file, req.cal_cache_file, req.engine_file),
                      on_local, export)
