"""inference: a model on the crops of a data.json set (cut from their full images by
bbox_coordinates) or of a folder -> results.txt and results.jsonl; with ``full_frame``, every
hand in each whole image (``previews``: each image with its hands drawn).

The classifying is ``inference.infer``; this task adds the locations: gs:// staged, and a
pipeline's artifacts."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from gesturenet_lib import io
from gesturenet_lib.data.dataset_file import dataset_json
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.inference.full_frame import CropRule
from gesturenet_lib.inference.infer import InferenceResult, images_root, inference
from gesturenet_lib.inference.video import Tracking, video_inference
from gesturenet_lib.specs import Experiment, located
from gesturenet_lib.tasks.experiment_copies import pull_set_images
from gesturenet_lib.tasks.local_copies import LocalCopies, run_staged
from gesturenet_lib.training.trainer import model_path

__all__ = ["InferenceRequest", "InferenceResult", "run"]


@dataclass(frozen=True)
class InferenceRequest:
    experiment: Experiment            # the spec: classes, batch size, image_root_path
    model: str
    key: str | None
    results_dir: str
    image_root: str | None = None     # root of data.json's paths (default: the spec's, else
    data_json: str | None = None      # data.json's folder)
    data_type: str = "kpi_set"
    image_dir: str | None = None      # a folder of crops (or whole images), instead
    full_frame: bool = False
    previews: str | None = None
    crop_rule: CropRule | None = None  # None: the library's default
    video: str | None = None          # a video file, camera index or stream URL (tracking)
    sequence: bool = False            # image_dir holds one video's numbered frames
    max_frames: int | None = None
    tracking: Tracking = Tracking()

    @classmethod
    def on_artifacts(cls, raw_dir: str, dataset_dir: str, model_dir: str, train_spec: dict,
                     key: str | None, results_dir: str, data_type: str = "kpi_set"
                     ) -> InferenceRequest:
        """A pipeline step's request: a set of the dataset artifact's data.json, each crop cut
        from the raw-data artifact's full image."""
        data_json = dataset_json(dataset_dir)
        exp = located(train_spec, data_json, os.path.abspath(dataset_dir),
                      os.path.abspath(results_dir))
        return cls(exp, model_path(model_dir), key, results_dir, os.path.abspath(raw_dir),
                   data_json, data_type)

    @property
    def root(self) -> str | None:
        return images_root(self.experiment, self.image_root, self.data_json)


def run(request: InferenceRequest) -> InferenceResult:
    req = request

    def on_local(copies: LocalCopies) -> InferenceRequest:
        if io.is_cloud_uri(req.results_dir):  # before pulling the inputs
            io.check_output(req.results_dir, "--results_dir", folder=True)
        local_json = copies.pull(req.data_json)
        if local_json and req.root:
            pull_set_images(copies, local_json, req.root, (req.data_type,), "full_image_path")
        return replace(req, model=copies.pull(req.model),
                       results_dir=copies.output(req.results_dir),
                       image_root=copies.local(req.root), data_json=local_json,
                       image_dir=copies.pull(req.image_dir), previews=copies.output(req.previews),
                       video=copies.pull(req.video))

    return run_staged(req, (req.model, req.results_dir, req.root, req.data_json,
                            req.image_dir, req.previews, req.video), on_local, _infer)


def _infer(req: InferenceRequest) -> InferenceResult:
    if req.max_frames is not None and not (req.video or req.sequence):
        raise UserInputError(f"--max_frames {req.max_frames}: only with --video or --sequence")
    if req.video or req.sequence:
        if req.sequence and not req.image_dir:
            raise UserInputError("--sequence: give the frames' folder as --image_dir")
        if req.video and (req.image_dir or req.data_json):
            raise UserInputError(f"--video {req.video}: give it alone, without --image_dir "
                                 "or --data_json")
        if req.full_frame:
            raise UserInputError("--full_frame: a video's frames are always whole frames; "
                                 "leave it out with --video or --sequence")
        return video_inference(req.experiment, req.model, req.key, req.results_dir,
                               video=req.video, image_dir=req.image_dir,
                               max_frames=req.max_frames, previews=req.previews,
                               rule=req.crop_rule, tracking=req.tracking)
    return inference(req.experiment, req.model, req.key, req.results_dir, req.image_root,
                     req.data_json, req.data_type, req.image_dir, req.full_frame, req.previews,
                     req.crop_rule)
