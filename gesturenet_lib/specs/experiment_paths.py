"""An experiment spec as the subtasks take it: parsed once, at the edge (the CLI from a file,
a pipeline step from its parameter), with the paths it names resolved. Staging for gs://
swaps in local stand-ins with ``dataclasses.replace``: no spec is written again to re-point
its paths."""

from __future__ import annotations

from dataclasses import dataclass

from gesturenet_lib import io, tao_mounts
from gesturenet_lib.specs.base import load
from gesturenet_lib.specs.experiment import ExperimentSpec


@dataclass(frozen=True)
class Experiment:
    spec: ExperimentSpec
    source: str                     # what messages name: the spec file, or the parameter
    data_json: str                  # dataset.data_path
    eval_json: str                  # evaluator.data_path, else dataset.data_path
    image_root_path: str | None     # dataset.image_root_path, when the spec gives one
    experiments: str                # output_experiments_fld
    weights_init: str | None        # model.weights_init

    @property
    def model_dir(self) -> str:
        return io.join(self.experiments, self.spec.save_weights_path)

    @property
    def eval_dir(self) -> str:
        return io.join(self.experiments, self.spec.evaluator.evaluation_exp_name)

    @property
    def image_root(self) -> str:
        """Where data.json's crop paths start: image_root_path, else data.json's folder."""
        return self.image_root_path or io.parent(self.data_json)

    @property
    def eval_image_root(self) -> str:
        return self.image_root_path or io.parent(self.eval_json)


def experiment_of(spec: ExperimentSpec, source: str, base: str) -> Experiment:
    """``spec``'s paths resolved against ``base`` (the spec file's folder)."""
    data_json = tao_mounts.resolve(spec.dataset.data_path, base)
    return Experiment(
        spec, source, data_json,
        tao_mounts.resolve(spec.evaluator.data_path, base) if spec.evaluator.data_path
        else data_json,
        tao_mounts.resolve(spec.dataset.image_root_path, base) if spec.dataset.image_root_path
        else None,
        tao_mounts.resolve(spec.output_experiments_fld, base),
        tao_mounts.resolve(spec.model.weights_init, base) if spec.model.weights_init else None)


def load_experiment(spec_file: str) -> Experiment:
    """The experiment spec file, validated, its paths resolved against its folder."""
    return experiment_of(load(ExperimentSpec, spec_file), spec_file, io.parent(spec_file))


def located(spec: dict, data_json: str, image_root: str, experiments: str,
            save_weights_path: str | None = None) -> Experiment:
    """A spec given as a parameter (a pipeline's), located at the step's folders: its own
    paths do not apply; weights_init stays as the spec gives it."""
    from dataclasses import replace

    from gesturenet_lib.specs.base import parse

    parsed = parse(ExperimentSpec, spec)
    if save_weights_path is not None:
        parsed = replace(parsed, save_weights_path=save_weights_path)
    return Experiment(parsed, "train_spec", data_json, data_json, image_root, experiments,
                      parsed.model.weights_init)
