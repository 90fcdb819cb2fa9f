"""Image decode/encode, with the checks a data pipeline needs: an unreadable, truncated or
corrupt file is reported as such instead of becoming a grey half-image in the training set.

Four formats are accepted, recognised by their leading bytes (never by the file's name):
JPEG, PNG, BMP and WebP; their size is read from the header before anything is decoded. A
JPEG is decoded by libjpeg-turbo through simplejpeg in strict mode, which turns libjpeg's
corrupt-data warnings (a header that lies about the size, a middle cut out) into errors that
OpenCV would only print; the others by OpenCV. Both give the same pixels for a JPEG."""

from __future__ import annotations

import contextlib
import io as _bytes_io
import logging
import os
import warnings
from collections import Counter

import numpy as np

from gesturenet_lib.errors import RecordError

log = logging.getLogger(__name__)

# File names taken as images wherever a folder is listed (import, inference, calibration).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def images_among(paths, folder: str, flag: str) -> list[str]:
    """The paths named as images (``IMAGE_SUFFIXES``), in their order; the others are counted
    by suffix in one warning naming ``flag`` and ``folder`` (a .tif or .gif is left out, not
    lost silently)."""
    images, others = [], Counter()
    for path in paths:
        if path.lower().endswith(IMAGE_SUFFIXES):
            images.append(path)
        else:
            others[os.path.splitext(path)[1].lower() or "(no suffix)"] += 1
    if others:
        log.warning("%s %s: %d files are not images by name and were left out (%s); images "
                    "are %s", flag, folder, sum(others.values()),
                    ", ".join(f"{suffix} {n}" for suffix, n in sorted(others.items())),
                    " ".join(IMAGE_SUFFIXES))
    return images
# The accepted formats, by their leading bytes; WebP is RIFF....WEBP.
FORMATS = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n", "BMP": b"BM", "WebP": b"RIFF"}
# Other formats named when refused, so the message says what the file is.
_OTHER_FORMATS = {b"#?RADIANCE": "Radiance HDR", b"#?RGBE": "Radiance HDR", b"GIF8": "GIF",
                  b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"8BPS": "Photoshop PSD",
                  b"\x00\x00\x00\x0cjP  ": "JPEG 2000", b"\xff\x4f\xff\x51": "JPEG 2000",
                  b"%PDF": "PDF", b"P6": "PPM", b"P5": "PGM", b"\x76\x2f\x31\x01": "OpenEXR",
                  b"qoif": "QOI", b"\x00\x00\x01\x00": "ICO"}
# ISO media files (an "ftyp" box at byte 4) by their brand: a phone's HEIC or AVIF photo.
_ISO_BRANDS = {b"heic": "HEIF/HEIC", b"heix": "HEIF/HEIC", b"mif1": "HEIF/HEIC",
               b"msf1": "HEIF/HEIC", b"hevc": "HEIF/HEIC", b"avif": "AVIF", b"avis": "AVIF"}

_EXIF_ORIENTATION = 0x0112
_JPEG_EOI, _PNG_IEND = b"\xff\xd9", b"IEND"


def image_format(data: bytes) -> str | None:
    """The accepted format ``data`` is in, by its leading bytes; None for anything else."""
    for name, magic in FORMATS.items():
        if data.startswith(magic) and (name != "WebP" or data[8:12] == b"WEBP"):
            return name
    return None


def check_format(data: bytes) -> str:
    """The accepted format of ``data``, or RecordError naming what was found."""
    found = image_format(data)
    if found:
        return found
    other = next((n for m, n in _OTHER_FORMATS.items() if data.startswith(m)), None)
    if data[4:8] == b"ftyp":
        other = _ISO_BRANDS.get(data[8:12], "an ISO media file (MP4, HEIF, ...)")
    what = other or f"unknown, first bytes {data[:8]!r}"
    raise RecordError(f"unreadable image (not an accepted format: {what}; accepted: "
                      f"{', '.join(FORMATS)})")


def check_complete(data: bytes) -> None:
    """Raise RecordError when a JPEG or PNG file is cut short (OpenCV would decode it anyway)."""
    kind = image_format(data)
    if kind == "JPEG":
        if _JPEG_EOI not in data[-64:]:
            raise RecordError("truncated image (JPEG end marker missing)")
    elif kind == "PNG":
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


def check_pixels(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) as stored, read by Pillow from the header alone (no decode);
    RecordError when the header is unreadable or the image is over ``max_pixels``."""
    return _checked_header(data, max_pixels)[:2]


def _checked_header(data: bytes, max_pixels: int) -> tuple[int, int, int]:
    """(width, height as stored, EXIF orientation 1-8) from one read of the header; the
    RecordErrors of ``check_pixels``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _header(data) as header:
            width, height = header.size
            turned = _orientation_of(header) if width * height <= max_pixels else 1
    except Image.DecompressionBombError as err:  # Pillow's own hard limit (about 179 M)
        raise RecordError(f"image is over the pixel limit ({err})"[:200]) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise RecordError(f"unreadable image header ({str(err)[:80]})") from None
    if width * height > max_pixels:
        raise RecordError(f"image of {width}x{height} pixels is over the pixel limit of "
                          f"{max_pixels:,} (--max_image_pixels)")
    return width, height, turned


def _orientation_of(header) -> int:
    """The EXIF orientation of an opened header (1 when it has none or it cannot be read:
    a PNG's EXIF may sit after its pixels, which the header read does not reach)."""
    from PIL import Image

    try:
        value = header.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def orientation(data: bytes) -> int:
    """The image's EXIF orientation (1-8; 1 when it has none), from its header alone."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _header(data) as header:
            return _orientation_of(header)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError):
        return 1


def displayed_size(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as displayed (EXIF 5-8 swap the axes), from the header alone; or
    RecordError for a format not accepted or an unreadable header."""
    check_format(data)
    width, height, turned = _checked_header(data, max_pixels)
    return (height, width) if turned in (5, 6, 7, 8) else (width, height)


class DecodeBuffer:
    """Memory reused by one caller for the JPEGs it decodes one after another. A fresh array
    of megabytes per image costs its page faults every time, and an mmap and munmap each
    where glibc's trim threshold is lowered (Dask's workers set MALLOC_TRIM_THRESHOLD_):
    measured there, 22 % of the crop step. An image decoded into it is valid until the next
    decode; one buffer per thread."""

    def __init__(self) -> None:
        self.memory = np.empty(0, np.uint8)

    def at_least(self, size: int) -> np.ndarray:
        if self.memory.size < size:
            self.memory = np.empty(size, np.uint8)
        return self.memory


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, rgb: bool = False,
           long_side: int = 0, buffer: DecodeBuffer | None = None) -> np.ndarray:
    """BGR (or RGB) uint8 image from encoded bytes, as displayed (the EXIF orientation applied,
    as browsers, OpenCV and Label Studio do), or RecordError. One decode, after the format,
    the completeness and the pixel count are checked from the bytes and the header.
    ``long_side``: a JPEG at least twice that long is decoded reduced (libjpeg's DCT scaling,
    by 1/2, 1/4 or 1/8: a fraction of the work) to the smallest size whose long side still
    reaches it; other images come at full size. With ``buffer``, a JPEG is decoded into it
    (see DecodeBuffer)."""
    import cv2

    if not data:
        raise RecordError("unreadable image (empty file)")
    kind = check_format(data)
    check_complete(data)
    width, height, turned = _checked_header(data, max_pixels)
    if kind == "JPEG":
        image = _decode_jpeg(data, rgb, _reduced_to(width, height, long_side),
                             buffer.at_least(width * height * 3) if buffer else None)
        if image is not None:
            return _displayed(image, turned)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RecordError(f"unreadable image (a {kind} file OpenCV cannot decode)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if rgb else image


def _reduced_to(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(min width, min height) of a reduced decode that keeps the long side at ``long_side``
    or more; (0, 0), full size, when the image is less than twice that long."""
    longest = max(width, height)
    if long_side <= 0 or longest < 2 * long_side:
        return 0, 0
    return -(-width * long_side // longest), -(-height * long_side // longest)


def _decode_jpeg(data: bytes, rgb: bool, at_least: tuple[int, int] = (0, 0),
                 into: np.ndarray | None = None) -> np.ndarray | None:
    """A JPEG decoded strictly (RecordError on libjpeg's corrupt-data warnings), stored grid,
    reduced as far as ``at_least`` (width, height) allows; None for a colour space simplejpeg
    does not convert (CMYK, YCCK): OpenCV does."""
    import simplejpeg

    try:
        colorspace = simplejpeg.decode_jpeg_header(data)[2]
    except ValueError as err:
        raise RecordError(f"unreadable image (JPEG header: {str(err)[:80]})") from None
    if colorspace not in ("Gray", "YCbCr", "RGB"):
        return None
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB" if rgb else "BGR", strict=True,
                                      min_width=at_least[0], min_height=at_least[1],
                                      buffer=into)
    except ValueError as err:  # libjpeg's own words: "Corrupt JPEG data: ...", "Premature end"
        raise RecordError(f"corrupt image ({str(err)[:100]})") from None


def _displayed(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored grid turned as EXIF orientation 1-8 says (the TIFF/EXIF definition)."""
    import cv2

    turn = {2: lambda im: cv2.flip(im, 1), 3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
            4: lambda im: cv2.flip(im, 0), 5: cv2.transpose,
            6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
            7: lambda im: cv2.flip(cv2.transpose(im), -1),
            8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE)}.get(orientation)
    return np.ascontiguousarray(turn(image)) if turn else image


def encode_png(image: np.ndarray) -> bytes:
    """Lossless crop encoding: compression 1 and the Up filter on every row. Measured on the
    sample's 545 dataset_convert crops: 0.72 ms and 23.3 KB a crop, against 1.14 ms and 24.0 KB
    with libpng's adaptive choice of filter per row (it tries all five) and 0.69 ms and 28.7 KB
    with OpenCV's defaults (run-length strategy)."""
    import cv2

    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1,
                                           cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
