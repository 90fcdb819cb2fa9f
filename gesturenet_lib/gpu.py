"""What TensorRT engines need (NVIDIA's TensorRT and cuda-python, and a GPU), checked in one
place for export (building an engine) and inference (running one)."""

from __future__ import annotations

from gesturenet_lib.errors import MissingRequirement


def require_tensorrt(what: str):
    """(tensorrt, cuda runtime) or a MissingRequirement naming what is missing."""
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingRequirement(f"{what}: TensorRT engines need NVIDIA TensorRT and a GPU: "
                                 "the Python module 'tensorrt' is missing (install the 'gpu' "
                                 "extra, pip install '.[gpu]', on a machine with CUDA)"
                                 ) from None
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise MissingRequirement(f"{what}: TensorRT engines need NVIDIA's cuda-python: "
                                     "the module 'cuda' is missing (pip install '.[gpu]')"
                                     ) from None
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count == 0:
        raise MissingRequirement(f"{what}: no CUDA GPU is visible (cudaGetDeviceCount: {err})")
    return trt, cudart
