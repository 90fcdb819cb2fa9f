"""`inference`: classify every image of a data.json set (cut from the full image by its
``bbox_coordinates``, exactly as dataset_convert cut it) or every image under a folder of
crops, and write results.txt (TAO-compatible first fields) and results.jsonl."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from gesturenet_lib import io
from gesturenet_lib.data.dataset_file import read_dataset_file
from gesturenet_lib.data.images import IMAGE_SUFFIXES
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.inference.backends import check_classes, load_backend
from gesturenet_lib.inference.run import Source, log_progress, predict_sources
from gesturenet_lib.specs import Experiment


@dataclass(frozen=True)
class InferenceResult:
    results_txt: str
    results_jsonl: str
    classified: int
    failed: int


def sources_from_data_json(data_json: str, data_type: str, image_root: str) -> list[Source]:
    entries = read_dataset_file(data_json).entries(data_type, crops=False, frames=True)
    return [Source(io.join(image_root, e.full_image_path), e.full_image_path,
                   e.bbox_coordinates) for e in entries]


def sources_from_dir(image_dir: str) -> list[Source]:
    if not io.is_dir(image_dir):
        raise UserInputError(f"--image_dir {image_dir}: folder not found")
    return [Source(path, os.path.relpath(path, image_dir))
            for path in io.list_files(image_dir) if path.lower().endswith(IMAGE_SUFFIXES)]


def inference(exp: Experiment, model_path: str, key: str | None, results_dir: str,
              image_root: str | None = None, data_json: str | None = None,
              data_type: str = "kpi_set", image_dir: str | None = None) -> InferenceResult:
    """Classify the images of ``data_json``'s set (cut from their full images; paths from
    ``image_root``, else the spec's image_root_path, else data.json's folder) or every image
    under ``image_dir``."""
    spec = exp.spec
    io.check_output(results_dir, "--results_dir", folder=True)
    if image_dir:
        sources = sources_from_dir(image_dir)
    elif data_json:
        root = image_root or exp.image_root_path or io.parent(data_json)
        sources = sources_from_data_json(data_json, data_type, root)
    else:
        raise UserInputError("give --data_json (with --image_root_path) or --image_dir")
    backend = load_backend(model_path, key, spec)
    check_classes(backend.classes, dict(spec.dataset.classes), model_path)
    names = sorted(backend.classes, key=backend.classes.get)
    predictions = predict_sources(backend, sources, spec.batch_size,
                                  progress=log_progress("inference"))
    txt, jsonl = [], []
    for p in predictions:
        record = {"path": p.source.shown_as}
        if p.source.corners:
            record["bbox_coordinates"] = p.source.corners
        if p.error:
            txt.append(f"{p.source.shown_as} -1 error {p.error.replace(' ', '_')}")
            record["error"] = p.error
        else:
            txt.append(f"{p.source.shown_as} {p.index} {names[p.index]} {p.confidence:.6f}")
            record.update(class_index=p.index, class_name=names[p.index],
                          confidence=p.confidence,
                          probabilities=[float(v) for v in p.probabilities])
            if p.hand_found is not None:
                record["hand_found"] = p.hand_found
        jsonl.append(json.dumps(record))
    out_txt = io.join(results_dir, "results.txt")
    out_jsonl = io.join(results_dir, "results.jsonl")
    io.write_text(out_txt, "\n".join(txt) + ("\n" if txt else ""))
    io.write_text(out_jsonl, "\n".join(jsonl) + ("\n" if jsonl else ""))
    failed = sum(1 for p in predictions if p.error)
    result = InferenceResult(out_txt, out_jsonl, len(predictions) - failed, failed)
    if result.classified == 0:
        raise UserInputError(f"no image could be classified ({failed} failed); see {out_jsonl}")
    return result
