"""TensorRT engine builds (GPU machines with the ``gpu`` extra): ONNX -> serialized engine,
fp32, fp16, or int8 from our calibration cache, one optimisation profile from batch 1 to
``max_batch_size``. Kept thin: TensorRT does the work; we only wire it."""

from __future__ import annotations

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.export.calibration import HEADERS
from gesturenet_lib.export.deploy_configs import INPUT_NAME
from gesturenet_lib.gpu import require_tensorrt


def _cache_calibrator(trt, cache_path: str, calibrator: str, batch_size: int):
    """A TensorRT calibrator that only replays the cache (calibration already ran on CPU)."""
    base = trt.IInt8MinMaxCalibrator if calibrator == "minmax" else trt.IInt8EntropyCalibrator2
    version = trt.__version__.split(".")
    tag = int(version[0]) * 10000 + int(version[1]) * 100 + int(version[2])

    class CacheCalibrator(base):
        def __init__(self):
            base.__init__(self)

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names):
            return None  # no data: the cache below is complete

        def read_calibration_cache(self):
            lines = io.read_text(cache_path).splitlines()
            lines[0] = f"TRT-{tag}-{HEADERS[calibrator]}"  # this TensorRT's version tag
            return ("\n".join(lines) + "\n").encode()

        def write_calibration_cache(self, cache):
            return None

    return CacheCalibrator()


def build_engine(onnx_bytes: bytes, engine_path: str, data_type: str, input_dims: tuple,
                 max_batch_size: int, max_workspace_size: int, cal_cache: str | None,
                 calibrator: str, batch_size: int) -> None:
    trt, _ = require_tensorrt("--engine_file")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserInputError(f"--engine_file {engine_path}: TensorRT cannot parse the ONNX "
                             f"model: {errors[:200]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, max_workspace_size)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (1, *input_dims), (max_batch_size, *input_dims),
                      (max_batch_size, *input_dims))
    config.add_optimization_profile(profile)
    if data_type == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif data_type == "int8":
        if not cal_cache or not io.exists(cal_cache):
            raise UserInputError(f"--cal_cache_file {cal_cache}: an INT8 engine needs the "
                                 "calibration cache")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _cache_calibrator(trt, cal_cache, calibrator, batch_size)
        config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserInputError(f"--engine_file {engine_path}: TensorRT could not build the "
                             "engine (see its log above)")
    io.write_bytes(engine_path, bytes(serialized))
