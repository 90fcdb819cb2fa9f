"""dataset_import: another dataset's layout -> TAO's original layout (``<mount_dir_path>/
<org_data_dir>/<org_dataset>/<user>/...``, one Label Studio annotation per hand box).

``hagrid``: HaGRID images anywhere under ``images`` and its annotation files under
``annotations``; ``tao``: a folder already in TAO's layout, copied as it is."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from typing import Literal

from gesturenet_lib import io
from gesturenet_lib.data.hagrid_import import ImportResult, import_hagrid, rejects_path
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.tasks.local_copies import LocalCopies, run_staged

FORMATS = ("hagrid", "tao")
HAGRID_ANNOTATIONS = "annotations"  # where a source folder holds HaGRID's annotation files


@dataclass(frozen=True)
class ImportRequest:
    format: Literal["hagrid", "tao"]
    images: str                   # hagrid: the images (any depth); tao: the folder to copy
    output: str                   # hagrid: the dataset folder to write; tao: the copy
    annotations: str | None = None  # hagrid: the annotation folder
    class_map: str | None = None  # hagrid: JSON file, HaGRID label -> class name

    @classmethod
    def into_mount(cls, source: str, format: str, mount: str, dataset: str,
                   org_data_dir: str = "original") -> ImportRequest:
        """A source folder (HaGRID's images with its annotations in ``annotations/``, or
        TAO's layout) imported into the mount_dir_path folder ``mount`` (a pipeline's raw-data
        artifact)."""
        if format == "tao":
            return cls("tao", source, mount)
        return cls(format, source, io.join(mount, org_data_dir, dataset),
                   io.join(source, HAGRID_ANNOTATIONS))


def run(request: ImportRequest) -> ImportResult:
    if request.format not in FORMATS:
        raise UserInputError(f"--format {request.format!r}: must be one of {', '.join(FORMATS)}")
    req = request

    def on_local(copies: LocalCopies) -> ImportRequest:
        copies.output(rejects_path(req.output))
        return replace(req, images=copies.pull(req.images), output=copies.output(req.output),
                       annotations=copies.pull(req.annotations),
                       class_map=copies.pull(req.class_map))

    return run_staged(req, (req.images, req.annotations, req.output, req.class_map),
                      on_local, _import)


def _import(req: ImportRequest) -> ImportResult:
    if req.format == "tao":
        if not io.is_dir(req.images):
            raise UserInputError(f"--images {req.images}: folder not found")
        shutil.copytree(req.images, req.output, dirs_exist_ok=True)
        return ImportResult(req.output, sum(1 for _ in io.list_files(req.output)), -1, -1, 0,
                            None, {})
    if req.annotations is None:
        raise UserInputError("--annotations: HaGRID's annotation folder is needed")
    return import_hagrid(req.images, req.annotations, req.output, req.class_map)
