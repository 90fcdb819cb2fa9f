"""The crop step's work, free of Beam so that worker processes start light: read an image
once, check it and each of its boxes, cut and encode the crops, write them.

Results are ``(ENTRY, data.json entry as a row)`` (``dataset_file.entry_row``) or
``(REJECTED, dead-letter record)`` pairs; a chunk of images gives a ``ChunkResult`` whose
rows are packed (see ``pack``).
"""

from __future__ import annotations

import hashlib
import pickle
import posixpath
import zlib
from dataclasses import dataclass, replace

from gesturenet_lib import io
from gesturenet_lib.data import images
from gesturenet_lib.data.annotations import HandRecord
from gesturenet_lib.data.dataset_file import entry_row
from gesturenet_lib.data.dead_letters import REJECTED, dropped
from gesturenet_lib.data.geometry import (
    SWAPPING_ORIENTATIONS,
    box_problem,
    crop_box,
    displayed_box,
    original_box,
)
from gesturenet_lib.errors import RecordError

ENTRY = "entry"


@dataclass(frozen=True)
class CropSettings:
    mount_dir: str
    post_data_dir: str
    experiment_name: str
    square: bool
    enlarge_ratio: float
    org_data_dir: str = "original"
    max_pixels: int = images.DEFAULT_MAX_PIXELS
    # Settings that decide whether an image is read, not how a crop is cut: left out of the
    # record that guards resumed runs (dataset_convert.settings_record).
    NOT_RECORDED = ("org_data_dir", "max_pixels")

    def dataset_dir(self, dataset: str) -> str:
        """The folder no image of ``dataset`` may leave, links resolved."""
        return io.join(self.mount_dir, self.org_data_dir, dataset)


def crop_relpath(settings: CropSettings, record: HandRecord) -> str:
    """Where the crop of ``record`` goes, relative to mount_dir_path."""
    stem = posixpath.splitext(record.frame)[0]
    tag = hashlib.sha1(record.source.encode("utf-8")).hexdigest()[:8]
    parts = [settings.post_data_dir.strip("/"), record.dataset, settings.experiment_name,
             record.folder, *([record.session] if record.session else []), f"{stem}_{tag}.png"]
    return "/".join(parts)


def _same_aspect(width: int, height: int, ow: int, oh: int) -> bool:
    return abs((width / height) / (ow / oh) - 1.0) <= 0.02


def on_displayed_grid(record: HandRecord, width: int, height: int, data: bytes) -> HandRecord:
    """``record`` with its box on the image as displayed (``width`` x ``height``, EXIF
    orientation applied), the grid Label Studio annotators see and the one rule here. An
    annotation whose original size is the *stored* grid of a photo whose orientation swaps its
    axes (6, 8, ...) was drawn on that grid: its box is turned with the image. Percent boxes
    survive a resize, not a different image: any other aspect is refused."""
    ow, oh = record.original_width, record.original_height
    if not (ow and oh) or _same_aspect(width, height, ow, oh):
        return record
    if _same_aspect(height, width, ow, oh):  # the header is read only in this case
        orientation = images.orientation(data)
        if orientation in SWAPPING_ORIENTATIONS:
            return replace(record, box=displayed_box(record.box, orientation),
                           original_width=oh, original_height=ow)
    raise RecordError(f"image is {width}x{height} but the annotation's original size is "
                      f"{ow}x{oh} (different aspect ratio; sizes as displayed, EXIF "
                      "orientation applied)")


def already_written(target: str) -> bool:
    """A resumed run keeps crops already written, if they are complete PNG files."""
    if not io.exists(target):
        return False
    try:
        images.check_complete(io.read_bytes(target))
        return True
    except RecordError:
        return False


def crop_image_group(settings: CropSettings, group, buffer: images.DecodeBuffer | None = None
                     ) -> list[tuple[str, dict]]:
    """(image path, [(split, record)]) -> one result per record."""
    image_path, items = group
    items = sorted(items, key=lambda it: it[1].source)
    try:
        try:
            data = io.read_contained(io.join(settings.mount_dir, image_path),
                                     settings.dataset_dir(items[0][1].dataset))
        except FileNotFoundError:
            raise RecordError(f"missing image {image_path}") from None
        except io.PathRefused as err:
            raise RecordError(f"image {image_path} {err}") from None
        except OSError as err:
            raise RecordError(f"unreadable image {image_path} ({err.strerror or err})") from None
        image = images.decode(data, settings.max_pixels, buffer=buffer)
    except RecordError as err:
        return [(REJECTED, dropped(record.source, str(err), REJECTED, record.label, split))
                for split, record in items]
    height, width = image.shape[:2]
    results = []
    for split, record in items:
        try:
            record = on_displayed_grid(record, width, height, data)
            problem = box_problem(record.box)
            if problem:
                raise RecordError(problem)
            results.append((ENTRY, _crop(settings, split, record, image, width, height)))
        except RecordError as err:
            results.append((REJECTED, dropped(record.source, str(err), REJECTED, record.label,
                                              split)))
    return results


def pack(records: list) -> bytes:
    """A batch of plain records (str, int, float, list, dict) as one byte string, compressed:
    entries repeat their field names and long path prefixes (zlib's fastest level makes the
    sample's 16 crops' rows 5-18x smaller for 0.02 ms), and every byte that reaches the last
    step is copied several times by the runner on the way (0.4 s of the in-process runner's
    time after the last crop at 24,000 crops, uncompressed)."""
    return zlib.compress(pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL), 1)


def unpack(packed: bytes) -> list:
    return pickle.loads(zlib.decompress(packed))


@dataclass(frozen=True)
class ChunkResult:
    """What cropping a chunk of images gave: its entries' rows packed (they travel to the
    write step as they are), or None when every box was rejected; its dead-letter records; the
    number of images and of crops."""
    entries: bytes | None
    rejected: list[dict]
    images: int
    crops: int = 0


def crop_chunk(settings: CropSettings, groups, buffer: images.DecodeBuffer | None = None
               ) -> ChunkResult:
    """Several image groups in one call (one task for a worker process), decoded one after
    another into ``buffer`` (a new one for the chunk when None)."""
    entries, rejected = [], []
    buffer = buffer or images.DecodeBuffer()
    for group in groups:
        for kind, payload in crop_image_group(settings, group, buffer):
            (entries if kind == ENTRY else rejected).append(payload)
    return ChunkResult(pack(entries) if entries else None, rejected, len(groups), len(entries))


def _crop(settings: CropSettings, split: str, record: HandRecord, image, width: int,
          height: int) -> dict:
    box = crop_box(record.box, width, height, settings.square, settings.enlarge_ratio)
    rel = crop_relpath(settings, record)
    target = io.join(settings.mount_dir, rel)
    if not already_written(target):
        png = images.encode_png(image[box.y0:box.y1, box.x0:box.x1])
        io.write_bytes(target, png, durable=False)
    return entry_row({
        "full_image_path": record.image_path,
        "bbox_coordinates": box.corners(),
        "bbox_original": original_box(record.box, width, height).corners(),
        "bbox_path": rel,
        "label": record.label,
        "user_id": record.user_id,
        "dataset": record.dataset,
        "session": record.session,
        "source": record.source,
        "image_size": [width, height],
        "metadata": record.metadata,
    }, split)
