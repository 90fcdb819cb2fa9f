"""Whole photos decoded reduced: a large JPEG comes at the smallest DCT-scaled size whose long
side still reaches the asked length, turned as its EXIF orientation says, with its full
displayed size beside it; anything smaller, and any other format, at full size."""

from __future__ import annotations

import io as bytes_io
import logging

import cv2
import numpy as np
import pytest
from PIL import Image

from gesturenet_lib.data.images import decode
from gesturenet_lib.models.preprocessing import load_frame


def _jpeg(width: int, height: int, orientation: int = 1) -> bytes:
    """A JPEG with a white block in the stored grid's top-left quarter."""
    stored = np.full((height, width, 3), 40, np.uint8)
    stored[height // 8:height // 4, width // 8:width // 4] = 255
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = bytes_io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_large_jpeg_is_decoded_reduced_and_turned(orientation, tmp_path):
    data = _jpeg(4000, 3000, orientation)
    full = decode(data, rgb=True)
    reduced = decode(data, rgb=True, long_side=1920)
    assert max(reduced.shape[:2]) == 2000 and reduced.shape[:2] == (
        full.shape[0] // 2, full.shape[1] // 2)
    # the same picture: the full decode shrunk by 2 differs only by resampling
    shrunk = cv2.resize(full, (reduced.shape[1], reduced.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - reduced.astype(int)).mean() < 2
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    rgb, size = load_frame(str(path), 1920)
    assert size == (full.shape[1], full.shape[0]) and rgb.shape == reduced.shape


def test_the_long_side_is_never_below_the_asked_length():
    # 3839 px is less than twice 1920: a reduced decode would be under 1920, so full size
    assert decode(_jpeg(3839, 1000), long_side=1920).shape[:2] == (1000, 3839)
    assert decode(_jpeg(7700, 1000), long_side=1920).shape[1] >= 1920
    assert decode(_jpeg(1280, 960), long_side=1920).shape[:2] == (960, 1280)
    assert decode(_jpeg(4000, 3000), long_side=0).shape[:2] == (3000, 4000)


def test_other_formats_come_at_full_size():
    ok, png = cv2.imencode(".png", np.zeros((3000, 4000, 3), np.uint8))
    assert ok and decode(png.tobytes(), long_side=1920).shape[:2] == (3000, 4000)


def test_jpegs_decoded_into_one_buffer_are_the_same_pixels():
    """The crop step decodes image after image into one buffer: each result equals a plain
    decode, whatever the size before it (the buffer grows), reduced or turned."""
    from gesturenet_lib.data.images import DecodeBuffer

    buffer = DecodeBuffer()
    for data, long_side in ((_jpeg(64, 48), 0), (_jpeg(4000, 3000, 6), 0),
                            (_jpeg(640, 480, 3), 0), (_jpeg(4000, 3000), 1920)):
        into = decode(data, long_side=long_side, buffer=buffer)
        assert np.array_equal(into, decode(data, long_side=long_side))
    assert buffer.memory.size == 4000 * 3000 * 3  # grown once, to the largest



def test_files_that_are_not_images_by_name_are_counted_not_lost(caplog):
    from gesturenet_lib.data.images import images_among

    paths = ["d/a.JPG", "d/b.tif", "d/c.png", "d/README", "d/e.gif", "d/f.tif", "d/g.webp"]
    with caplog.at_level(logging.WARNING):
        kept = images_among(paths, "d", "--image_dir")
    assert kept == ["d/a.JPG", "d/c.png", "d/g.webp"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("--image_dir d: 4 files are not images by name")
    assert "(no suffix) 1, .gif 1, .tif 2" in line
    caplog.clear()
    assert images_among(["x.png"], "d", "--image_dir") == ["x.png"] and not caplog.records


@pytest.mark.parametrize("brand, named", [(b"heic", "HEIF/HEIC"), (b"mif1", "HEIF/HEIC"),
                                          (b"avif", "AVIF"), (b"isom", "ISO media file")])
def test_a_phone_photo_in_a_format_not_accepted_is_named(brand, named):
    """An iPhone's HEIC (or an AVIF) renamed .jpg: the reject says what it is."""
    from gesturenet_lib.errors import RecordError

    data = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1heic" + bytes(64)
    with pytest.raises(RecordError, match=f"not an accepted format: .*{named}.*accepted: JPEG"):
        decode(data)
