"""Builds small TAO original-layout trees for tests: real PNG/JPEG files and Label Studio
annotations, plus the two dataset specs pointing at them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from gesturenet_lib.data.annotations import label_studio_annotation
from gesturenet_lib.data.geometry import PercentBox


class TaoTree:
    def __init__(self, root: Path, dataset: str = "data", classes=None):
        self.root = root
        self.dataset = dataset
        self.dataset_dir = root / "original" / dataset
        self.classes = classes or ["thumbs_up", "fist", "stop", "ok", "two", "random"]
        self.users: dict[str, dict] = {}
        self.count = 0

    def image(self, user: str, session: str, name: str, width: int = 64, height: int = 48,
              seed: int = 0) -> str:
        """Write an image; returns its task_path (relative to mount_dir_path)."""
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        path = self.dataset_dir / user / session / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), pixels)
        self.users.setdefault(user, {})
        return f"original/{self.dataset}/{user}/{session}/{name}"

    def annotate(self, task_path: str, label: str, box=(25.0, 25.0, 50.0, 50.0),
                 width: int = 64, height: int = 48, metadata=None, name: str | None = None,
                 raw: str | None = None) -> str:
        """Write one annotation (or ``raw`` text); returns its path relative to the mount."""
        self.count += 1
        name = name or f"a{self.count:04d}.json"
        path = self.dataset_dir / "annotation" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            path.write_text(raw)
        else:
            doc = label_studio_annotation(task_path, label, PercentBox(*box), width, height,
                                          metadata)
            path.write_text(json.dumps(doc))
        return str(path.relative_to(self.root))

    def hand(self, user: str, session: str, frame: str, label: str, **kw) -> str:
        """An image with one annotated box; returns the annotation source."""
        task = self.image(user, session, frame, seed=self.count)
        return self.annotate(task, label, **kw)

    def write_set_file(self, users: dict[str, dict] | None = None) -> None:
        (self.dataset_dir / f"{self.dataset}.json").write_text(
            json.dumps({"set": self.dataset, "users": users if users is not None
                        else self.users}))

    def specs(self, kpi_users=(), sampling_rate=1, enlarge=1.0, square=True,
              experiment=None) -> tuple[str, str]:
        dataset_config = {
            "org_dataset": self.dataset, "mount_dir_path": str(self.root),
            "org_data_dir": "original", "post_data_dir": "extracted",
            "kpi_users": list(kpi_users), "sampling_rate": sampling_rate,
            "convert_bbox_square": square, "bbox_enlarge_ratio": enlarge,
            "annotation_config": {"annotation_path": "annotation"}}
        exp = {"set_list": {"train_val": [self.dataset], "kpi": [self.dataset]},
               "classes": self.classes,
               "uid_list": {"val_fraction": 0.25}}
        exp.update(experiment or {})
        a, b = self.root / "dataset_config.json", self.root / "dataset_experiment_config.json"
        a.write_text(json.dumps(dataset_config))
        b.write_text(json.dumps(exp))
        return str(a), str(b)


def tree_with_rejects(root: Path) -> TaoTree:
    """Six people, two of them kpi (u4, u5); one corrupt image, one box outside its image, one
    malformed annotation file: rejects that every run of it must report the same."""
    tree = TaoTree(root)
    for u in range(6):
        for f in range(3):
            tree.hand(f"u{u}", "s1", f"f{f}.png", ["fist", "stop", "two"][f])
    bad = tree.image("u1", "s2", "corrupt.png")
    (tree.root / bad).write_bytes(b"\x89PNG\r\n\x1a\n not really")
    tree.annotate(bad, "fist")
    tree.annotate(tree.image("u2", "s2", "wide.png"), "fist", box=(80.0, 80.0, 50.0, 50.0))
    tree.annotate("", "fist", raw="{ not json")
    tree.write_set_file()
    return tree
