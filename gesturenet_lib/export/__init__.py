"""export: ONNX / .etlt, INT8 calibration, TensorRT engines and deployment configs.

Defaults of TAO's export flags (its documentation's INT8 section), read by the CLI's flags and
by ``ExportRequest`` alike; this module stays import-light because the CLI imports it at start.
"""

DEFAULT_BATCHES = 10     # --batches: calibration batches
DEFAULT_BATCH_SIZE = 1   # --batch_size: images per calibration batch
