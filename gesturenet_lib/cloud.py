"""The subtasks with gs:// paths: each stages its inputs into a local cache (``staging``),
runs the same library function on the local stand-ins (the same typed request, its locations
replaced: no spec is rewritten), then uploads its outputs. With local paths only, each calls
the library function directly. The CLI calls these."""

from __future__ import annotations

from dataclasses import replace

from gesturenet_lib import io
from gesturenet_lib.specs import Experiment
from gesturenet_lib.staging import Stage, any_cloud


def dataset_import(images: str, annotations: str, output: str, class_map: str | None):
    from gesturenet_lib.data.hagrid_import import import_hagrid

    if not any_cloud(images, annotations, output, class_map):
        return import_hagrid(images, annotations, output, class_map)
    with Stage() as stage:
        result = import_hagrid(stage.pull(images), stage.pull(annotations),
                               stage.output(output), stage.pull(class_map))
        stage.output(f"{output.rstrip('/')}_import_rejects.jsonl")
        stage.push()
    return result


def dataset_convert(req):
    from gesturenet_lib.data.dataset_convert import dataset_convert as convert
    from gesturenet_lib.data.dataset_convert import datasets_of, is_local_runner
    from gesturenet_lib.data.dataset_file import fold_path, rejects_path

    ds, exp = req.dataset, req.experiment
    mount = ds.mount_dir_path
    if not any_cloud(mount, req.output_filename) or not is_local_runner(req.beam_args):
        return convert(req)  # local paths, or a managed runner's workers read gs:// themselves
    # The library checks the local stand-ins; the gs:// outputs are probed here, before the
    # whole job, not at its upload.
    for path, what, folder in ((req.output_filename, "--output_filename", False),
                               (io.join(mount, ds.post_data_dir),
                                f"{req.dataset_spec}: mount_dir_path/post_data_dir", True)):
        if io.is_cloud_uri(path):
            io.check_output(path, what, folder)
    with Stage() as stage:
        for name in datasets_of(exp):
            stage.pull(io.join(mount, ds.org_data_dir, name))
        stage.output(io.join(mount, ds.post_data_dir))
        out = req.output_filename
        for path in [out, rejects_path(out)] + [fold_path(out, i) for i in range(req.k_folds)]:
            stage.output(path)
        result = convert(replace(req, dataset=replace(ds, mount_dir_path=stage.local(mount)),
                                 output_filename=stage.local(out)))
        stage.push()
    return replace(result, data_json=out, rejects_file=rejects_path(out),
                   fold_files=[fold_path(out, i) for i in range(len(result.fold_files))])


def _pull_set_images(stage: Stage, data_json_local: str, image_root: str,
                     sets: tuple[str, ...], field: str = "bbox_path") -> None:
    """The TFDS shards when data.json names them, else each image the sets list."""
    from gesturenet_lib.data.dataset_file import read_dataset_file

    data = read_dataset_file(data_json_local)
    if field == "bbox_path" and data.tfds_dir:
        stage.pull(io.join(image_root, data.tfds_dir))
    stage.pull_many([io.join(image_root, getattr(entry, field)) for name in sets
                     if name in data.sets for entry in data.entries(name, crops=False)
                     if getattr(entry, field)])


def _stage_experiment(stage: Stage, exp: Experiment, sets: tuple[str, ...],
                      pull_outputs: bool = False, field: str = "bbox_path") -> Experiment:
    """``exp`` on local stand-ins: data.json and the images of ``sets`` pulled, the
    experiment folder an output (pulled first when ``pull_outputs``: train resumes from
    checkpoints already on gs://)."""
    if io.is_cloud_uri(exp.experiments):  # a local one is checked by the library itself
        io.check_output(exp.experiments, f"{exp.source}: output_experiments_fld", folder=True)
    data_json = stage.pull(exp.data_json)
    eval_json = data_json if exp.eval_json == exp.data_json else stage.pull(exp.eval_json)
    local = replace(exp, data_json=data_json, eval_json=eval_json,
                    image_root_path=stage.local(exp.image_root_path) if exp.image_root_path
                    else None,
                    experiments=stage.output(exp.experiments),
                    weights_init=stage.pull(exp.weights_init))
    pulls = [(data_json, exp.image_root)]
    if exp.eval_json != exp.data_json:
        pulls.append((eval_json, exp.eval_image_root))
    for local_json, root in pulls:
        if io.is_cloud_uri(root):
            _pull_set_images(stage, local_json, root, sets, field)
    if pull_outputs:
        stage.pull(exp.model_dir)
    return local


def _cloud_experiment(exp: Experiment) -> bool:
    return any_cloud(exp.data_json, exp.eval_json, exp.image_root_path, exp.experiments,
                     exp.weights_init)


def train(exp: Experiment, key: str):
    from gesturenet_lib.training.trainer import train as run

    if not _cloud_experiment(exp):
        return run(exp, key)
    with Stage() as stage:
        local = _stage_experiment(stage, exp, ("train_set", "validation_set"),
                                  pull_outputs=True)
        try:
            result = run(local, key)
        finally:
            stage.push()  # checkpoints too, so a later run resumes from gs://
    return replace(result, output_dir=exp.model_dir,
                   model_path=io.join(exp.model_dir, "model.tlt"))


def evaluate(exp: Experiment, model: str, key: str | None, data_type: str,
             full_frame=None):
    """``full_frame``: a CropRule, to evaluate on the set's whole images."""
    from gesturenet_lib.evaluation.evaluate import evaluate as on_crops
    from gesturenet_lib.evaluation.full_frame import evaluate_full_frames

    def run(exp, model, key, data_type):
        if full_frame is None:
            return on_crops(exp, model, key, data_type)
        return evaluate_full_frames(exp, model, key, data_type, full_frame)

    if not (_cloud_experiment(exp) or io.is_cloud_uri(model)):
        return run(exp, model, key, data_type)
    with Stage() as stage:
        field = "bbox_path" if full_frame is None else "full_image_path"
        result = run(_stage_experiment(stage, exp, (data_type,), field=field),
                     stage.pull(model), key, data_type)
        stage.push()
    return replace(result, output_dir=exp.eval_dir)


def export(req):
    from gesturenet_lib.export.exporter import export as run

    paths = (req.model, req.output, req.cal_image_dir, req.cal_data_file, req.cal_cache_file,
             req.engine_file)
    if not any_cloud(*paths):
        return run(req)
    with Stage() as stage:
        for path in (req.cal_data_file, req.cal_cache_file):
            if path and io.is_cloud_uri(path) and io.exists(path):
                stage.pull(path)  # reused when they exist, as locally
        if req.cal_cache_file and io.is_cloud_uri(req.cal_cache_file):
            from gesturenet_lib.export.calibration import ranges_path

            ranges = ranges_path(req.cal_cache_file)
            if io.exists(ranges):
                stage.pull(ranges)
            stage.output(ranges)
        outputs = [io.parent(req.output), req.cal_data_file, req.cal_cache_file,
                   req.engine_file]
        for path in outputs:
            if path and io.is_cloud_uri(path):
                io.check_output(path, "export output", folder=path == outputs[0])
            stage.output(path)
        local = replace(req, model=stage.pull(req.model), output=stage.local(req.output),
                        cal_image_dir=stage.pull(req.cal_image_dir),
                        cal_data_file=stage.local(req.cal_data_file) if req.cal_data_file
                        else None,
                        cal_cache_file=stage.local(req.cal_cache_file),
                        engine_file=stage.local(req.engine_file) if req.engine_file else None,
                        storage_uri=req.storage_uri or (io.parent(req.output)
                                                        if io.is_cloud_uri(req.output) else None))
        result = run(local)
        stage.push()
    result.files = {k: v.replace(stage.root, "gs:/") for k, v in result.files.items()}
    return result


def inference(exp: Experiment, model: str, key: str | None, results_dir: str,
              image_root: str | None, data_json: str | None, data_type: str,
              image_dir: str | None, full_frame: bool = False, previews: str | None = None,
              crop_rule=None):  # None: the library's default
    from gesturenet_lib.inference.infer import inference as run

    if not any_cloud(model, results_dir, image_root, data_json, image_dir, previews):
        return run(exp, model, key, results_dir, image_root, data_json, data_type, image_dir,
                   full_frame, previews, crop_rule)
    if io.is_cloud_uri(results_dir):  # before pulling the inputs; a local one: the library
        io.check_output(results_dir, "--results_dir", folder=True)
    with Stage() as stage:
        local_json = stage.pull(data_json)
        root = image_root or exp.image_root_path or (io.parent(data_json) if data_json
                                                     else None)
        if local_json and root and io.is_cloud_uri(root):
            _pull_set_images(stage, local_json, root, (data_type,), "full_image_path")
        stage.output(results_dir)
        result = run(exp, stage.pull(model), key, stage.local(results_dir),
                     stage.local(root) if root else None, local_json, data_type,
                     stage.pull(image_dir), full_frame, stage.output(previews), crop_rule)
        stage.push()
    return replace(result, results_txt=io.join(results_dir, "results.txt"),
                   results_jsonl=io.join(results_dir, "results.jsonl"))
