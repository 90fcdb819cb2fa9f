"""Spec files: typed loaders and validation (one module per spec file)."""

from gesturenet_lib.specs.base import SpecError, dump, dumps, load, parse, parse_text
from gesturenet_lib.specs.convert_specs import load_convert_specs, reconcile
from gesturenet_lib.specs.dataset_config import DatasetConfig
from gesturenet_lib.specs.dataset_experiment_config import DatasetExperimentConfig
from gesturenet_lib.specs.experiment import ExperimentSpec
from gesturenet_lib.specs.experiment_paths import (
    Experiment,
    experiment_of,
    load_experiment,
    located,
)


def load_dataset_config(file: str) -> DatasetConfig:
    return load(DatasetConfig, file)


def load_dataset_experiment_config(file: str) -> DatasetExperimentConfig:
    return load(DatasetExperimentConfig, file)


def load_experiment_spec(file: str) -> ExperimentSpec:
    return load(ExperimentSpec, file)


__all__ = [
    "SpecError", "DatasetConfig", "DatasetExperimentConfig", "ExperimentSpec", "dump", "dumps",
    "load", "parse", "parse_text", "load_dataset_config", "load_dataset_experiment_config",
    "load_experiment_spec", "load_convert_specs", "reconcile", "Experiment", "experiment_of",
    "load_experiment", "located",
]
