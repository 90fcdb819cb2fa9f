"""The subtasks with gs:// paths: each stages its inputs into a local cache (``staging``),
runs the same library function on the local stand-ins, then uploads its outputs. With local
paths only, each calls the library function directly. The CLI calls these."""

from __future__ import annotations

import os
from dataclasses import replace

from gesturenet_lib import io
from gesturenet_lib.specs import dumps, load_experiment_spec
from gesturenet_lib.staging import Stage, any_cloud


def _write_local_spec(stage: Stage, name: str, spec) -> str:
    path = os.path.join(stage.root, "specs", name)
    io.write_text(path, dumps(spec))
    return path


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
    from gesturenet_lib.specs import load_convert_specs

    ds, exp = load_convert_specs(req.dataset_spec, req.experiment_spec)  # errors name the files
    mount = ds.mount_dir_path
    if not any_cloud(mount, req.output_filename, req.dataset_spec, req.experiment_spec):
        return convert(req)
    if not is_local_runner(req.beam_args):
        return convert(req)  # a managed runner's workers read and write gs:// themselves
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
        local_ds = _write_local_spec(stage, "dataset_config.json",
                                     replace(ds, mount_dir_path=stage.local(mount)))
        local_exp = _write_local_spec(stage, "dataset_experiment_config.json", exp)
        out = req.output_filename
        for path in [out, rejects_path(out)] + [fold_path(out, i) for i in range(req.k_folds)]:
            stage.output(path)
        result = convert(replace(req, dataset_spec=local_ds, experiment_spec=local_exp,
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


def _local_experiment(stage: Stage, spec_file: str, sets: tuple[str, ...],
                      pull_outputs: bool = False) -> tuple[str, str]:
    """A local copy of the experiment spec with every gs:// path staged; returns
    (local spec file, the experiment folder the outputs go to)."""
    spec = load_experiment_spec(spec_file)
    base = io.parent(spec_file)
    data_json = io.resolve(spec.dataset.data_path, base)
    image_root = io.resolve(spec.dataset.image_root_path or io.parent(data_json), base)
    eval_json = io.resolve(spec.evaluator.data_path, base) if spec.evaluator.data_path else None
    local_json = stage.pull(data_json)
    local_eval = stage.pull(eval_json)
    if io.is_cloud_uri(image_root):
        _pull_set_images(stage, local_json, image_root, sets)
        if local_eval and local_eval != local_json:
            _pull_set_images(stage, local_eval, image_root, sets)
    experiments = io.resolve(spec.output_experiments_fld, base)
    if io.is_cloud_uri(experiments):  # a local one is checked by the library itself
        io.check_output(experiments, f"{spec_file}: output_experiments_fld", folder=True)
    if pull_outputs:  # train resumes from checkpoints already on gs://
        stage.pull(io.join(experiments, spec.save_weights_path))
    stage.output(experiments)
    model = spec.model
    if model.weights_init:
        model = replace(model, weights_init=stage.pull(io.resolve(model.weights_init, base)))
    local = replace(spec, output_experiments_fld=stage.local(experiments), model=model,
                    dataset=replace(spec.dataset, data_path=local_json,
                                    image_root_path=stage.local(image_root)),
                    evaluator=replace(spec.evaluator, data_path=local_eval))
    return _write_local_spec(stage, "train_spec.json", local), experiments


def _cloud_spec(spec_file: str) -> bool:
    spec = load_experiment_spec(spec_file)
    base = io.parent(spec_file)
    return any_cloud(spec_file, io.resolve(spec.dataset.data_path, base),
                     io.resolve(spec.dataset.image_root_path or ".", base),
                     io.resolve(spec.output_experiments_fld, base), spec.model.weights_init,
                     spec.evaluator.data_path and io.resolve(spec.evaluator.data_path, base))


def train(spec_file: str, key: str):
    from gesturenet_lib.training.trainer import train as run

    if not _cloud_spec(spec_file):
        return run(spec_file, key)
    with Stage() as stage:
        local_spec, experiments = _local_experiment(
            stage, spec_file, ("train_set", "validation_set"), pull_outputs=True)
        try:
            result = run(local_spec, key)
        finally:
            stage.push()  # checkpoints too, so a later run resumes from gs://
    spec = load_experiment_spec(spec_file)
    out = io.join(experiments, spec.save_weights_path)
    return replace(result, output_dir=out, model_path=io.join(out, "model.tlt"))


def evaluate(spec_file: str, model: str, key: str | None, data_type: str):
    from gesturenet_lib.evaluation.evaluate import evaluate as run

    if not (_cloud_spec(spec_file) or io.is_cloud_uri(model)):
        return run(spec_file, model, key, data_type)
    with Stage() as stage:
        local_spec, experiments = _local_experiment(stage, spec_file, (data_type,))
        result = run(local_spec, stage.pull(model), key, data_type)
        stage.push()
    name = load_experiment_spec(spec_file).evaluator.evaluation_exp_name
    return replace(result, output_dir=io.join(experiments, name))


def export(req):
    from gesturenet_lib.export.exporter import export as run

    paths = (req.model, req.output, req.cal_image_dir, req.cal_data_file, req.cal_cache_file,
             req.engine_file, req.experiment_spec)
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
                        experiment_spec=stage.pull(req.experiment_spec),
                        storage_uri=req.storage_uri or (io.parent(req.output)
                                                        if io.is_cloud_uri(req.output) else None))
        result = run(local)
        stage.push()
    result.files = {k: v.replace(stage.root, "gs:/") for k, v in result.files.items()}
    return result


def inference(spec_file: str, model: str, key: str | None, results_dir: str,
              image_root: str | None, data_json: str | None, data_type: str,
              image_dir: str | None):
    from gesturenet_lib.inference.infer import inference as run

    if not any_cloud(spec_file, model, results_dir, image_root, data_json, image_dir):
        return run(spec_file, model, key, results_dir, image_root, data_json, data_type,
                   image_dir)
    if io.is_cloud_uri(results_dir):  # before pulling the inputs; a local one: the library
        io.check_output(results_dir, "--results_dir", folder=True)
    with Stage() as stage:
        local_json = stage.pull(data_json)
        root = image_root or load_experiment_spec(spec_file).dataset.image_root_path or (
            io.parent(data_json) if data_json else None)
        if local_json and root and io.is_cloud_uri(root):
            _pull_set_images(stage, local_json, root, (data_type,), "full_image_path")
        stage.output(results_dir)
        result = run(stage.pull(spec_file), stage.pull(model), key, stage.local(results_dir),
                     stage.local(root) if root else None, local_json, data_type,
                     stage.pull(image_dir))
        stage.push()
    return replace(result, results_txt=io.join(results_dir, "results.txt"),
                   results_jsonl=io.join(results_dir, "results.jsonl"))
