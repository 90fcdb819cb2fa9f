"""Request bodies -> model inputs, with a one-line reason for every refusal (a 400).

Images arrive encoded (JPEG, PNG, BMP, WebP: ``images.FORMATS``): raw in a binary body, a
v2 binary tensor or a gRPC ``bytes_contents``; base64 in JSON (a v2 ``BYTES`` string, or a
v1 instance written as TF Serving's ``{"b64": ...}``). They are decoded and preprocessed by
the functions
`gesturenet inference` uses, so the server and the CLI give the same answers."""

from __future__ import annotations

import base64
import binascii

import numpy as np

from gesturenet_lib.data.images import FORMATS, check_format, image_format
from gesturenet_lib.errors import RecordError
from gesturenet_lib.models.preprocessing import Preprocessing, decode_rgb, to_input

# Keys a v1 instance may hold its image under (TF Serving's and KServe's examples use these).
V1_IMAGE_KEYS = ("image_bytes", "image", "b64", "data")


class BadRequest(ValueError):
    """The request cannot be served as sent; the message is its one-line reason."""


def image_bytes(value: object, where: str) -> bytes:
    """The encoded image in ``value``: raw bytes, base64 (str or bytes) or ``{"b64": ...}``."""
    if isinstance(value, dict):
        found = next((value[k] for k in V1_IMAGE_KEYS if k in value), None)
        if found is None:
            raise BadRequest(f"{where}: expected an image under one of "
                             f"{', '.join(V1_IMAGE_KEYS)}, got keys {sorted(value)[:5]}")
        return image_bytes(found, where)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes) and image_format(value):  # anything else in bytes is base64
        return value
    if not isinstance(value, str | bytes):
        raise BadRequest(f"{where}: expected image bytes or a base64 string, got "
                         f"{type(value).__name__}")
    if not value:
        raise BadRequest(f"{where}: empty image (0 bytes)")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        if isinstance(value, bytes):  # raw bytes of another format: say which
            try:
                check_format(value)
            except RecordError as err:
                raise BadRequest(f"{where}: {err}") from None
        raise BadRequest(f"{where}: neither an image ({', '.join(FORMATS)}) nor "
                         "base64") from None
    if not data:
        raise BadRequest(f"{where}: empty image (0 bytes)")
    return data


def v1_instances(payload: object, where: str = "instances") -> list:
    """The ``instances`` list of a v1 request body."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest('expected a JSON object with "instances" (KServe v1) or a v2 '
                         "request on /v2/models/<name>/infer")
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadRequest(f"{where}: expected a non-empty list")
    return instances


def preprocess_images(blobs: list[bytes], prep: Preprocessing, where: str) -> np.ndarray:
    """Decode and preprocess encoded images into one float32 batch, as inference does."""
    tensors = []
    for i, blob in enumerate(blobs):
        if not blob:
            raise BadRequest(f"{where}[{i}]: empty image (0 bytes)")
        try:
            tensors.append(to_input(decode_rgb(blob), prep))
        except RecordError as err:
            raise BadRequest(f"{where}[{i}]: {err}") from None
    return np.stack(tensors)


def check_batch(array: np.ndarray, dims: tuple[int, ...], max_batch: int, where: str
                ) -> np.ndarray:
    """``array`` as a float32 N x dims batch, N in 1..max_batch, every value finite."""
    if array.ndim != len(dims) + 1 or tuple(array.shape[1:]) != dims:
        expected = "x".join(str(d) for d in ("N", *dims))
        raise BadRequest(f"{where}: shape {list(array.shape)}, expected {expected}")
    if not 1 <= array.shape[0] <= max_batch:
        raise BadRequest(f"{where}: batch of {array.shape[0]}, expected 1 to {max_batch} "
                         "(--max_batch)")
    if not np.isfinite(array).all():
        raise BadRequest(f"{where}: holds NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


def nested_floats(value: object, where: str) -> np.ndarray:
    """A v1 tensor given as nested JSON lists -> float32 array (ragged lists refused)."""
    try:
        return np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError):
        raise BadRequest(f"{where}: expected nested lists of numbers of one shape") from None


# Bytes per element of the v2 protocol's fixed-size datatypes (BYTES is length-prefixed).
V2_ITEM_BYTES = {"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1,
                 "INT16": 2, "INT32": 4, "INT64": 8, "FP16": 2, "BF16": 2, "FP32": 4, "FP64": 8}


def check_v2_binary(body: bytes, header_length: str) -> dict:
    """The JSON header of a v2 REST request with binary tensors
    (``Inference-Header-Content-Length``) whose sizes all agree with its data, or
    BadRequest: the JSON header fits the body, every
    ``binary_data_size`` is a count of bytes, the parts add up to the body exactly, a
    fixed-size tensor's part is its shape's elements times their size, and a BYTES tensor's
    length prefixes stay inside its part and give its shape's element count. Checked before
    the request is parsed, so a lie is a 400 and never an allocation of what it claims."""
    import orjson

    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length[:20]!r}: expected "
                         f"the JSON header's length, 1 to {len(body)} (the body's)")
    start = int(header_length)
    try:
        header = orjson.loads(body[:start])
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"JSON header: {str(err)[:100]}") from None
    inputs = header.get("inputs") if isinstance(header, dict) else None
    if not isinstance(inputs, list):
        raise BadRequest('JSON header: expected an object with an "inputs" list')
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise BadRequest(f"{where}: expected an object")
        size = (tensor.get("parameters") or {}).get("binary_data_size") \
            if isinstance(tensor.get("parameters") or {}, dict) else None
        if size is None:
            continue  # its data is in the JSON, which KServe checks
        if type(size) is not int or size < 0:
            raise BadRequest(f"{where}.parameters.binary_data_size {str(size)[:20]}: expected "
                             "a count of bytes")
        if start + size > len(body):
            raise BadRequest(f"{where}: binary_data_size {size} runs past the body's end "
                             f"({len(body) - start} bytes left)")
        elements = _elements(tensor.get("shape"), where)
        datatype = tensor.get("datatype")
        if datatype == "BYTES":
            _check_bytes_elements(body[start:start + size], elements, where)
        elif datatype in V2_ITEM_BYTES:
            if size != elements * V2_ITEM_BYTES[datatype]:
                raise BadRequest(f"{where}: binary_data_size {size}, but shape "
                                 f"{tensor['shape']} of {datatype} takes "
                                 f"{elements * V2_ITEM_BYTES[datatype]} bytes")
        else:
            raise BadRequest(f"{where}: datatype {str(datatype)[:20]} is not a v2 datatype")
        start += size
    if start != len(body):
        raise BadRequest(f"{len(body) - start} bytes after the last binary tensor; the "
                         "binary_data_size values must add up to the body")
    return header


def _elements(shape: object, where: str) -> int:
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"{where}.shape {str(shape)[:40]}: expected a list of sizes")
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _check_bytes_elements(data: bytes, elements: int, where: str) -> None:
    """A BYTES tensor's data: ``elements`` values, each a 4-byte little-endian length and
    that many bytes, filling ``data`` exactly."""
    offset, count = 0, 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise BadRequest(f"{where}: a BYTES element's length prefix is cut short")
        length = int.from_bytes(data[offset:offset + 4], "little")
        offset += 4
        if offset + length > len(data):
            raise BadRequest(f"{where}: a BYTES element claims {length} bytes, "
                             f"{len(data) - offset} are left")
        offset += length
        count += 1
    if count != elements:
        raise BadRequest(f"{where}: {count} BYTES elements, but its shape holds {elements}")


def v2_binary_bytes_as_base64(body: bytes, header: dict, header_length: int
                              ) -> tuple[bytes, int] | None:
    """A checked v2 binary request (``header``, as ``check_v2_binary`` returned it) whose
    BYTES tensors are binary ->
    the same request with those tensors as base64 strings in the JSON (the other binary
    tensors stay binary): (body, new header length; 0 when nothing binary is left). None when
    it has no binary BYTES tensor. KServe decodes a binary BYTES element as UTF-8 text, which
    an encoded image is not (a 500); tritonclient's HTTP client sends binary by default."""
    import orjson

    start, parts, changed = header_length, [], False
    for tensor in header["inputs"]:
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        data = body[start:start + size]
        start += size
        if tensor["datatype"] != "BYTES":
            parts.append(data)
            continue
        values, offset = [], 0
        while offset < len(data):
            length = int.from_bytes(data[offset:offset + 4], "little")
            values.append(base64.b64encode(data[offset + 4:offset + 4 + length]).decode())
            offset += 4 + length
        del tensor["parameters"]["binary_data_size"]
        tensor["data"], changed = values, True
    if not changed:
        return None
    text = orjson.dumps(header)
    return text + b"".join(parts), (len(text) if parts else 0)
