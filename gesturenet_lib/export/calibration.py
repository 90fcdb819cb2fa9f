"""INT8 calibration on the CPU with ONNX Runtime, written as a TensorRT calibration cache.

Calibration tensorfile (``--cal_data_file``): a NumPy ``.npy`` array, float32, shape
``(N, C, H, W)`` (or N, H, W, C for channels_last models): the calibration images already
preprocessed exactly as in training. Reused when it exists, as TAO does.

TensorRT calibration cache (``--cal_cache_file``): a header line
``TRT-<version>-<calibrator>`` then one ``<tensor name>: <8 hex digits>`` line per tensor, the
hex digits being the big-endian IEEE-754 float32 of the scale ``amax / 127``. The ranges come
from ONNX Runtime's calibrators (entropy, percentile or minmax) and are made symmetric, as
TensorRT's INT8 is. Reused (calibration skipped) when it exists, as TAO does. TensorRT has no
percentile calibrator; a percentile cache is labelled ``EntropyCalibration2`` so that
TensorRT's entropy calibrator accepts it.

The same calibration run also keeps ONNX Runtime's own ranges beside the cache
(``<cache>.ranges.json``), from which the INT8 ONNX model for the CPU is quantized (QDQ,
per-channel int8 weights, uint8 activations: ONNX Runtime's fast x86 kernels). Both files are
reused together; a cache without its ranges file (one made by TensorRT, say) is refused for the
CPU model with a message, rather than quantizing from scales ONNX Runtime handles badly.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass

import numpy as np

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError

# A TensorRT 10.x version tag; an engine build rewrites it to the installed version.
DEFAULT_TRT_VERSION = 100800
HEADERS = {"entropy": "EntropyCalibration2", "percentile": "EntropyCalibration2",
           "minmax": "MinMaxCalibration"}


@dataclass(frozen=True)
class CalibrationCache:
    header: str
    scales: dict[str, float]   # tensor name -> amax / 127


def write_cache(path: str, scales: dict[str, float], calibrator: str,
                trt_version: int = DEFAULT_TRT_VERSION) -> None:
    lines = [f"TRT-{trt_version}-{HEADERS[calibrator]}"]
    for name in sorted(scales):
        lines.append(f"{name}: {struct.pack('>f', scales[name]).hex()}")
    io.write_text(path, "\n".join(lines) + "\n")


def read_cache(path: str) -> CalibrationCache:
    text = io.read_text(path).splitlines()
    if not text or not text[0].startswith("TRT-"):
        raise UserInputError(f"{path}: not a TensorRT calibration cache (no TRT-... header)")
    scales = {}
    for number, line in enumerate(text[1:], start=2):
        if not line.strip():
            continue
        name, sep, hexed = line.rpartition(": ")
        try:
            scales[name] = struct.unpack(">f", bytes.fromhex(hexed.strip()))[0]
        except ValueError:
            raise UserInputError(f"{path}: line {number} = {line[:60]!r}: expected "
                                 "'tensor: 8 hex digits'") from None
        if not sep:
            raise UserInputError(f"{path}: line {number}: expected 'tensor: hex'")
    return CalibrationCache(text[0], scales)


class _Reader:
    """ONNX Runtime CalibrationDataReader over a calibration tensorfile."""

    def __init__(self, data: np.ndarray, input_name: str, batch_size: int):
        self.batches = [data[i:i + batch_size] for i in range(0, len(data), batch_size)]
        self.input_name = input_name
        self.position = 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {self.input_name: self.batches[self.position - 1]}

    def rewind(self):
        self.position = 0

    def __len__(self):
        return len(self.batches)


def _method(calibrator: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
            "minmax": CalibrationMethod.MinMax}[calibrator]


def calibrate(onnx_path: str, data: np.ndarray, batch_size: int, calibrator: str
              ) -> dict[str, tuple[float, float]]:
    """Per-tensor (low, high) ranges of every activation ONNX Runtime calibrates."""
    from onnxruntime.quantization.calibrate import create_calibrator

    with tempfile.TemporaryDirectory(prefix="gesturenet-calib-") as tmp:
        extra = {"percentile": 99.99} if calibrator == "percentile" else {}
        calib = create_calibrator(onnx_path, None,
                                  augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                                  calibrate_method=_method(calibrator), extra_options=extra)
        reader = _Reader(data, "input_1", batch_size)
        # The entropy and minmax collectors take one batch per call: a cascade's later stages
        # (the hand_landmarks crop graph's) run on all of a batch or on none of it, so a
        # tensor's size differs from batch to batch, and ONNX Runtime stacks the batches of
        # one call into one array; their histograms and ranges add up across calls. Its
        # percentile collector cannot add an empty tensor to a histogram it has begun, so it
        # takes every batch in one call, which works where sizes do not differ.
        calls = [reader] if calibrator == "percentile" else [
            _Reader(batch, "input_1", len(batch)) for batch in reader.batches]
        for call in calls:
            try:
                calib.collect_data(call)
            except ValueError as err:
                if "inhomogeneous" not in str(err):
                    raise
                raise UserInputError(
                    f"--cal_image_dir: the {calibrator} calibrator cannot calibrate this "
                    "model: a stage of its graph ran on some calibration batches and on no "
                    "image of others (the hand_landmarks crop graph's cascade); use "
                    "--calibrator entropy (the default) or minmax") from None
        ranges = calib.compute_data()
    return {name: (float(np.min(r.range_value[0])), float(np.max(r.range_value[1])))
            for name, r in ranges.data.items()}


def scales_of(ranges: dict[str, tuple[float, float]]) -> dict[str, float]:
    """TensorRT's symmetric scales: amax / 127 with amax = max(|low|, |high|)."""
    return {name: max(abs(lo), abs(hi), 1e-8 * 127) / 127.0
            for name, (lo, hi) in ranges.items()}


def ranges_path(cache_path: str) -> str:
    """The ONNX Runtime ranges kept beside the TensorRT cache (same calibration run)."""
    return cache_path + ".ranges.json"


def write_ranges(path: str, ranges: dict[str, tuple[float, float]]) -> None:
    import json

    io.write_text(path, json.dumps({k: list(v) for k, v in sorted(ranges.items())}) + "\n")


def read_ranges(path: str) -> dict[str, tuple[float, float]]:
    import json

    return {k: (float(v[0]), float(v[1])) for k, v in json.loads(io.read_text(path)).items()}


@dataclass(frozen=True)
class QuantizeSettings:
    op_types: list[str] | None      # ONNX ops to quantize (None: every supported op)
    reduce_range: bool              # 7-bit weights (safer on x86 without VNNI)


def quantize_with_ranges(onnx_path: str, output_path: str,
                         ranges: dict[str, tuple[float, float]], calibrator: str,
                         settings: QuantizeSettings) -> None:
    """An INT8 QDQ ONNX model for ONNX Runtime from the calibration's ranges.

    uint8 activations, per-channel int8 weights (U8S8): ONNX Runtime's fast x86 path, measured
    3x FP32 here. The ranges are ONNX Runtime's own (asymmetric); the symmetric TensorRT
    scales, fed to ONNX Runtime's QDQ kernels, collapsed a trained model's accuracy."""
    extra = {"op_types_to_quantize": settings.op_types} if settings.op_types else {}
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    data = {name: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
            for name, (lo, hi) in ranges.items()}
    with tempfile.TemporaryDirectory(prefix="gesturenet-quant-") as tmp:
        ranges_file = os.path.join(tmp, "ranges.json")
        save_tensors_data(TensorsData(_method(calibrator), data), ranges_file)
        quantize_static(onnx_path, output_path, None, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, reduce_range=settings.reduce_range,
                        calibrate_method=_method(calibrator),
                        calibration_cache_path=ranges_file, **extra)


def quantized_activations(qdq_onnx: bytes) -> set[str]:
    """Tensors an INT8 QDQ model quantizes (inputs of QuantizeLinear nodes, not weights)."""
    import onnx

    proto = onnx.load_from_string(qdq_onnx)
    initializers = {i.name for i in proto.graph.initializer}
    suffix = "_QuantizeLinear_Input"  # a graph output quantized in place is renamed so
    return {name[:-len(suffix)] if name.endswith(suffix) else name
            for node in proto.graph.node if node.op_type == "QuantizeLinear"
            for name in node.input[:1] if name not in initializers}
