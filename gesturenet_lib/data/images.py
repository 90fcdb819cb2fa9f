"""Image decode/encode with OpenCV, with the checks a data pipeline needs: an unreadable or
truncated file is reported as such instead of becoming a grey half-image in the training set."""

from __future__ import annotations

import numpy as np

from gesturenet_lib.data.annotations import RecordError

_JPEG_SOI, _JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
_PNG_SIGNATURE, _PNG_IEND = b"\x89PNG\r\n\x1a\n", b"IEND"


def check_complete(data: bytes) -> None:
    """Raise RecordError when a JPEG or PNG file is cut short (OpenCV would decode it anyway)."""
    if data.startswith(_JPEG_SOI):
        if _JPEG_EOI not in data[-64:]:
            raise RecordError("truncated image (JPEG end marker missing)")
    elif data.startswith(_PNG_SIGNATURE):
        if _PNG_IEND not in data[-32:]:
            raise RecordError("truncated image (PNG IEND chunk missing)")


def decode(data: bytes) -> np.ndarray:
    """BGR uint8 image from encoded bytes, or RecordError."""
    import cv2

    if not data:
        raise RecordError("unreadable image (empty file)")
    check_complete(data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RecordError("unreadable image (not a format OpenCV can decode)")
    return image


def encode_png(image: np.ndarray) -> bytes:
    """Lossless crop encoding; compression 1 keeps encode time low."""
    import cv2

    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
