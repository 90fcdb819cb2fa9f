"""Image decode/encode with OpenCV, with the checks a data pipeline needs: an unreadable or
truncated file is reported as such instead of becoming a grey half-image in the training set."""

from __future__ import annotations

import contextlib
import io as _bytes_io
import warnings

import numpy as np

from gesturenet_lib.errors import RecordError

# File names taken as images wherever a folder is listed (import, inference, calibration):
# what OpenCV decodes here.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

_EXIF_ORIENTATION = 0x0112
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


# Pixels an image may have before it is decoded (Pillow's own bomb warning starts near 89 M): a
# 6 MB JPEG of 20000 x 20000 would take 1.2 GB decoded (2.4 GB resident with its copies).
DEFAULT_MAX_PIXELS = 100_000_000


@contextlib.contextmanager
def _header(data: bytes):
    """The image as Pillow opens it: its header parsed, nothing decoded, no bomb warning."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(_bytes_io.BytesIO(data)) as header:
            yield header


def check_pixels(data: bytes, max_pixels: int) -> None:
    """RecordError when the header says the image is over ``max_pixels``; read by Pillow from
    the header alone (no decode). A format Pillow cannot identify is left to OpenCV."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _header(data) as header:
            width, height = header.size
    except Image.DecompressionBombError as err:  # Pillow's own hard limit (about 179 M)
        raise RecordError(f"image is over the pixel limit ({err})"[:200]) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return
    if width * height > max_pixels:
        raise RecordError(f"image of {width}x{height} pixels is over the pixel limit of "
                          f"{max_pixels:,} (--max_image_pixels)")


def orientation(data: bytes) -> int:
    """The image's EXIF orientation (1-8; 1 when it has none), from its header alone."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _header(data) as header:
            value = header.getexif().get(_EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image from encoded bytes, as displayed (OpenCV applies the EXIF orientation,
    as browsers and Label Studio do), or RecordError."""
    import cv2

    if not data:
        raise RecordError("unreadable image (empty file)")
    check_complete(data)
    check_pixels(data, max_pixels)
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
