"""NVIDIA's GestureNet tutorial data, rebuilt from the bundled HaGRID photos.

The notebook downloads HGR (flat folders of photos named by person, plus feature points) and
runs NVIDIA's `convert_hgr_to_tlt_data.py`, which writes TAO's original layout on the host:

- `<out>/original/data/<uid>/<session>/<image>`;
- one Label Studio JSON per hand under `<out>/original/data/annotation/`, its `task_path` the
  image's *absolute host path*, the box `{"type": "rectanglelabels", "original_width": W,
  "original_height": H, "value": {"x", "y", "width", "height"}}` (percent, no label list);
- the set file `<out>/original/data/data.json`: `{"set": "data", "users": {"<uid>": {}}}`.

`write_hgr_style` lays the HaGRID photos out as HGR does (one flat folder, person ids `uid_<n>`
in the file names, a box file per photo); `convert_like_nvidia` is our stand-in for NVIDIA's
converter and writes exactly the layout above. Nothing here uses the project's own importer.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2

# HaGRID label -> GestureNet class (the README's default class map)
CLASS_OF = {"like": "thumbs_up", "fist": "fist", "stop": "stop", "palm": "stop", "ok": "ok",
            "peace": "two"}
PEOPLE = 10  # HaGRID's people are dealt into HGR-style ids uid_1 .. uid_10


def _person(hagrid_user: str) -> str:
    bucket = int(hashlib.sha256(hagrid_user.encode()).hexdigest(), 16) % PEOPLE
    return f"uid_{bucket + 1}"


def write_hgr_style(sample: Path, out: Path, limit: int) -> list[Path]:
    """Up to ``limit`` photos of the sample as `<gesture>_<uid>_<n>.jpg` with a `.boxes.json`
    beside each (HaGRID's normalised [x, y, w, h] boxes and labels); returns the photos."""
    out.mkdir(parents=True, exist_ok=True)
    photos = []
    for ann_file in sorted((sample / "annotations").rglob("*.json")):
        for image_id, rec in sorted(json.loads(ann_file.read_text()).items()):
            src = next((sample / "dataset").rglob(f"{image_id}.jpg"), None)
            if src is None or len(photos) == limit:
                continue
            name = f"{ann_file.stem}_{_person(rec['user_id'])}_{len(photos)}.jpg"
            shutil.copyfile(src, out / name)
            (out / f"{name}.boxes.json").write_text(json.dumps(
                {"bboxes": rec["bboxes"], "labels": rec["labels"]}))
            photos.append(out / name)
    return photos


def convert_like_nvidia(hgr_dir: Path, out: Path) -> int:
    """TAO's original layout under ``out`` with host-absolute task paths; returns the boxes."""
    dataset = out / "original" / "data"
    users: dict[str, dict] = {}
    boxes = 0
    for photo in sorted(hgr_dir.glob("*.jpg")):
        gesture, uid = photo.stem.split("_uid_")[0], "uid_" + photo.stem.split("_uid_")[1]
        uid = uid.rsplit("_", 1)[0]
        target = dataset / uid / gesture / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, target)
        height, width = cv2.imread(str(target)).shape[:2]
        users[uid] = {}
        info = json.loads(Path(f"{photo}.boxes.json").read_text())
        for i, (box, label) in enumerate(zip(info["bboxes"], info["labels"], strict=True)):
            x, y, w, h = box
            doc = {"task_path": str(target.resolve()), "completions": [{"result": [
                {"type": "choices", "value": {"choices": [CLASS_OF.get(label, "random")]}},
                {"type": "rectanglelabels", "original_width": width, "original_height": height,
                 "value": {"x": 100 * x, "y": 100 * y, "width": 100 * w, "height": 100 * h}},
            ]}]}
            annotation = dataset / "annotation" / f"{photo.stem}_{i}.json"
            annotation.parent.mkdir(parents=True, exist_ok=True)
            annotation.write_text(json.dumps(doc))
            boxes += 1
    (dataset / "data.json").write_text(json.dumps({"set": "data", "users": users}))
    return boxes
