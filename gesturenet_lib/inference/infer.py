"""`inference`: classify every image of a data.json set (cut from the full image by its
``bbox_coordinates``, exactly as dataset_convert cut it) or every image under a folder of
crops, and write results.txt (TAO-compatible first fields) and results.jsonl. With
``full_frame``, each image is a whole frame: every hand in it is found and classified, one
line and one record per hand (see ``full_frame``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from gesturenet_lib import io
from gesturenet_lib.data.dataset_file import read_dataset_file
from gesturenet_lib.data.images import images_among
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.inference.full_frame import (
    CropRule,
    classify_frames,
    hand_finder,
    hand_record,
    photo_workers,
)
from gesturenet_lib.inference.loading import load_checked_backend
from gesturenet_lib.inference.previews import write_preview
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


def frames_from_data_json(data_json: str, data_type: str, image_root: str) -> list[Source]:
    """The full images of a set, each once (data.json lists an image once per hand)."""
    entries = read_dataset_file(data_json).entries(data_type, crops=False, frames=True)
    paths = dict.fromkeys(e.full_image_path for e in entries)
    return [Source(io.join(image_root, p), p) for p in paths]


def sources_from_dir(image_dir: str) -> list[Source]:
    if not io.is_dir(image_dir):
        raise UserInputError(f"--image_dir {image_dir}: folder not found")
    return [Source(path, os.path.relpath(path, image_dir))
            for path in images_among(io.list_files(image_dir), image_dir, "--image_dir")]


def images_root(exp: Experiment, image_root: str | None, data_json: str | None) -> str | None:
    """Where data.json's paths start: ``image_root``, else the spec's image_root_path, else
    data.json's folder."""
    return image_root or exp.image_root_path or (io.parent(data_json) if data_json else None)


def inference(exp: Experiment, model_path: str, key: str | None, results_dir: str,
              image_root: str | None = None, data_json: str | None = None,
              data_type: str = "kpi_set", image_dir: str | None = None,
              full_frame: bool = False, previews: str | None = None,
              crop_rule: CropRule | None = None) -> InferenceResult:
    """Classify the images of ``data_json``'s set (cut from their full images; paths from
    ``image_root``, else the spec's image_root_path, else data.json's folder) or every image
    under ``image_dir``; with ``full_frame`` every hand in each whole image, drawn into
    ``previews`` when given."""
    spec = exp.spec
    io.check_output(results_dir, "--results_dir", folder=True)
    if previews and not full_frame:
        raise UserInputError(f"--previews {previews}: only with --full_frame")
    if image_dir:
        sources = sources_from_dir(image_dir)
    elif data_json:
        root = images_root(exp, image_root, data_json)
        read = frames_from_data_json if full_frame else sources_from_data_json
        sources = read(data_json, data_type, root)
    else:
        raise UserInputError("give --data_json (with --image_root_path) or --image_dir")
    backend = load_checked_backend(model_path, key, spec)
    names = sorted(backend.classes, key=backend.classes.get)
    if full_frame:
        return _full_frames(sources, backend, names, results_dir, previews,
                            crop_rule or CropRule())
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
    failed = sum(1 for p in predictions if p.error)
    return write_results(results_dir, txt, jsonl, len(predictions) - failed, failed)


def write_results(results_dir: str, txt: list[str], jsonl: list[str], classified: int,
                   failed: int) -> InferenceResult:
    out_txt = io.join(results_dir, "results.txt")
    out_jsonl = io.join(results_dir, "results.jsonl")
    io.write_text(out_txt, "\n".join(txt) + ("\n" if txt else ""))
    io.write_text(out_jsonl, "\n".join(jsonl) + ("\n" if jsonl else ""))
    result = InferenceResult(out_txt, out_jsonl, classified, failed)
    if result.classified == 0:
        raise UserInputError(f"no image could be classified ({failed} failed); see {out_jsonl}")
    return result


def _full_frames(sources: list[Source], backend, names: list[str], results_dir: str,
                 previews: str | None, rule: CropRule) -> InferenceResult:
    """results.txt: ``path hand_index class_index class_name confidence x0 y0 x1 y1`` per
    hand, ``path -1 no_hand`` for an image without one; results.jsonl: one record per hand
    (``hand_record``), ``{"path", "hands": 0}`` for an image without one."""
    workers = photo_workers(len(sources))
    results = classify_frames(sources, hand_finder(workers=workers), backend, rule,
                              keep_images=bool(previews), workers=workers,
                              progress=log_progress("inference --full_frame"))
    txt, jsonl = [], []
    for result in results:
        shown = result.source.shown_as
        if result.error:
            txt.append(f"{shown} -1 error {result.error.replace(' ', '_')}")
            jsonl.append(json.dumps({"path": shown, "error": result.error}))
            continue
        if not result.hands:
            txt.append(f"{shown} -1 no_hand")
            jsonl.append(json.dumps({"path": shown, "image_size": list(result.size),
                                     "hands": 0}))
        for k, hand in enumerate(result.hands):
            txt.append(f"{shown} {k} {hand.index} {names[hand.index]} {hand.confidence:.6f} "
                       + " ".join(str(v) for v in hand.box))
            jsonl.append(json.dumps(hand_record(result, k, hand, names)))
        if previews:
            write_preview(previews, shown, result.image, result.hands_on_image(), names)
    failed = sum(1 for r in results if r.error)
    return write_results(results_dir, txt, jsonl, len(results) - failed, failed)
