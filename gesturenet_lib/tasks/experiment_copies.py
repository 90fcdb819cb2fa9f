"""An experiment's locations on local copies (train, evaluate and inference read the same
data.json and images)."""

from __future__ import annotations

from dataclasses import replace

from gesturenet_lib import io
from gesturenet_lib.specs import Experiment
from gesturenet_lib.tasks.local_copies import LocalCopies


def experiment_paths(exp: Experiment) -> tuple[str | None, ...]:
    return (exp.data_json, exp.eval_json, exp.image_root_path, exp.experiments,
            exp.weights_init)


def pull_set_images(copies: LocalCopies, data_json_local: str, image_root: str,
                    sets: tuple[str, ...], field: str = "bbox_path") -> None:
    """The TFDS shards when data.json names them, else each image the sets list."""
    from gesturenet_lib.data.dataset_file import read_dataset_file

    if not io.is_cloud_uri(image_root):
        return
    data = read_dataset_file(data_json_local)
    if field == "bbox_path" and data.tfds_dir:
        copies.pull(io.join(image_root, data.tfds_dir))
    copies.pull_many([io.join(image_root, getattr(entry, field)) for name in sets
                      if name in data.sets for entry in data.entries(name, crops=False)
                      if getattr(entry, field)])


def local_experiment(copies: LocalCopies, exp: Experiment, sets: tuple[str, ...],
                     pull_outputs: bool = False, field: str = "bbox_path") -> Experiment:
    """``exp`` on local copies: data.json and the images of ``sets`` pulled, the output
    folder an output (pulled first when ``pull_outputs``: train resumes from checkpoints
    already on gs://)."""
    if io.is_cloud_uri(exp.experiments):  # a local one is checked by the task itself
        io.check_output(exp.experiments, f"{exp.source}: output_experiments_fld", folder=True)
    data_json = copies.pull(exp.data_json)
    eval_json = data_json if exp.eval_json == exp.data_json else copies.pull(exp.eval_json)
    local = replace(exp, data_json=data_json, eval_json=eval_json,
                    image_root_path=copies.local(exp.image_root_path),
                    experiments=copies.output(exp.experiments),
                    weights_init=copies.pull(exp.weights_init))
    pull_set_images(copies, data_json, exp.image_root, sets, field)
    if exp.eval_json != exp.data_json:
        pull_set_images(copies, eval_json, exp.eval_image_root, sets, field)
    if pull_outputs:
        copies.pull(exp.model_dir)
    return local
