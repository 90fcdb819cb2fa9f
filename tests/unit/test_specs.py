"""Spec loading: the example specs load, round-trip, and every kind of bad spec is reported
with its file, JSON path and value, exit code 2."""

from __future__ import annotations

import copy
import json

import pytest

from gesturenet_lib import cli
from gesturenet_lib.specs import (
    DatasetConfig,
    DatasetExperimentConfig,
    ExperimentSpec,
    dump,
    dumps,
    load,
    parse,
)
from tests.conftest import SPECS

EXAMPLES = [
    (SPECS / "dataset_config.json", DatasetConfig),
    (SPECS / "dataset_experiment_config.json", DatasetExperimentConfig),
    (SPECS / "train_spec.json", ExperimentSpec),
]


@pytest.mark.parametrize("path,cls", EXAMPLES, ids=lambda p: getattr(p, "name", ""))
def test_example_specs_load_and_round_trip(path, cls, tmp_path):
    spec = load(cls, str(path))
    again = tmp_path / "again.json"
    again.write_text(dumps(spec))
    assert load(cls, str(again)) == spec
    assert dump(load(cls, str(again))) == dump(spec)


def test_example_specs_pass_the_cli_validator(capsys):
    rc = cli.main(["validate", "--dataset_spec", str(SPECS / "dataset_config.json"),
                   "--experiment_spec", str(SPECS / "dataset_experiment_config.json"),
                   "-e", str(SPECS / "train_spec.json")])
    assert rc == 0
    assert capsys.readouterr().out.count(": OK") == 3


def test_tao_defaults_fill_a_minimal_train_spec():
    spec = parse(ExperimentSpec, {
        "output_experiments_fld": "/out",
        "dataset": {"classes": {"a": 0, "b": 1}, "num_classes": 2, "data_path": "d.json"}})
    assert spec.model.num_layers == 18
    assert spec.model.data_format == "channels_first"
    assert (spec.model.image_height, spec.model.image_width) == (160, 160)
    assert spec.model.kernel_regularization_factor == 0.001
    assert spec.trainer.top_training.stage_order == 1
    assert spec.trainer.finetuning.stage_order == 2
    assert spec.evaluator.evaluation_exp_name == "results"


def test_both_regularizer_spellings_are_accepted(train_spec_dict):
    d = copy.deepcopy(train_spec_dict)
    d["model"].pop("kernel_regularization_factor")
    d["model"]["Kernel_regularizer_factor"] = 0.004
    assert parse(ExperimentSpec, d).model.kernel_regularization_factor == 0.004


def test_trainer_class_and_module_are_accepted_and_kept(train_spec_dict):
    spec = parse(ExperimentSpec, train_spec_dict)
    assert dump(spec)["trainer"]["class"] == "GestureNetTrainer"


def test_boolean_shorthand_for_an_augmentation_block(train_spec_dict):
    d = copy.deepcopy(train_spec_dict)
    d["dataset"]["augmentation"]["horizontal_flip"] = True
    flip = parse(ExperimentSpec, d).dataset.augmentation.horizontal_flip
    assert flip.enable is True and flip.probability == 0.5


def _set(d, dotted, value):
    """Set ``a.b.c`` in nested dicts; a value of DELETE removes the key."""
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d[k]
    if value is DELETE:
        del d[keys[-1]]
    else:
        d[keys[-1]] = value


DELETE = object()

# (spec kind, JSON path to change, new value, expected message fragment)
BAD_TRAIN = [
    ("model.num_layers", 19,
     "model.num_layers = 19: must be one of 6, 10, 12, 18, 26, 34, 50, 101, 152"),
    ("model.num_layers", "18", 'model.num_layers = "18": must be one of'),
    ("model.data_format", "nchw",
     'model.data_format = "nchw": must be one of channels_first, channels_last'),
    ("model.kernel_regularizer_type", "l3",
     'model.kernel_regularizer_type = "l3": must be one of l1, l2'),
    ("model.image_height", 8, "model.image_height = 8: must be in [16, 2048]"),
    ("model.gray_scale_input", "yes", 'model.gray_scale_input = "yes": must be true or false'),
    ("model.kernel_regularization_factor", -0.1,
     "model.kernel_regularization_factor = -0.1: must be in [0, 1]"),
    ("model.num_leyers", 18, "model.num_leyers: unknown key; did you mean 'num_layers'?"),
    ("batch_size", 0, "batch_size = 0: must be in [1, 65536]"),
    ("batch_size", 12.5, "batch_size = 12.5: must be an integer"),
    ("random_seed", -1, "random_seed = -1: must be in [0, inf]"),
    ("trainer.top_training.optimizer", "adagrad",
     'trainer.top_training.optimizer = "adagrad": must be one of sgd, adam, rmsprop'),
    ("trainer.finetuning.loss_fn", "mse", 'trainer.finetuning.loss_fn = "mse": must be one of'),
    ("trainer.finetuning.lr_drop_rate", 1.5,
     "trainer.finetuning.lr_drop_rate = 1.5: must be in (0, 1]"),
    ("trainer.finetuning.initial_lrate", 0,
     "trainer.finetuning.initial_lrate = 0.0: must be in (0"),
    ("trainer.finetuning.stage_order", 1,
     "trainer.finetuning.stage_order = 1: must differ from top_training.stage_order (1)"),
    ("trainer.num_workers", 0, "trainer.num_workers = 0: must be in [1, 1024]"),
    ("dataset.num_classes", 5, "dataset.num_classes = 5: must equal the number of classes (6)"),
    ("dataset.classes.random", 7, "dataset.classes = "),
    ("dataset.classes.random", "five", 'dataset.classes.random = "five": must be an integer'),
    ("dataset.data_path", DELETE, "dataset.data_path: missing required key (string)"),
    ("dataset.augmentation.occlusion_aug.probability", 1.2,
     "dataset.augmentation.occlusion_aug.probability = 1.2: must be in [0, 1]"),
    ("dataset.augmentation.gamma_aug.min_gamma", 2.0,
     "dataset.augmentation.gamma_aug.min_gamma = 2.0: must be <= max_gamma (1.2)"),
    ("dataset.augmentation.rotation_rnage", {}, "did you mean 'rotation_range'?"),
    ("dataset.augmentation.occlusion_aug.fill_value", 300,
     "dataset.augmentation.occlusion_aug.fill_value = 300: must be in [0, 255]"),
    ("evaluator", [], "evaluator = []: must be a JSON object"),
    ("model.Kernel_regularizer_factor", 0.1,
     "model.Kernel_regularizer_factor: given twice, also as 'kernel_regularization_factor'"),
]


@pytest.mark.parametrize("where,value,message", BAD_TRAIN, ids=[b[0] for b in BAD_TRAIN])
def test_bad_train_spec_is_one_line_with_path_and_value(where, value, message, train_spec_dict,
                                                        write_json, capsys):
    d = copy.deepcopy(train_spec_dict)
    _set(d, where, value)
    path = write_json(d, "train_spec.json")
    assert cli.main(["validate", "-e", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{path}: " in err
    assert message in err


BAD_DATASET = [
    ("bbox_enlarge_ratio", 0.5, "bbox_enlarge_ratio = 0.5: must be in [1, 5]"),
    ("sampling_rate", 0, "sampling_rate = 0: must be in [1, inf]"),
    ("kpi_users", "uid_1", 'kpi_users = "uid_1": must be a list of string'),
    ("kpi_users", [1, 2], "kpi_users[0] = 1: must be a string"),
    ("convert_bbox_square", 1, "convert_bbox_square = 1: must be true or false"),
    ("org_dataset", DELETE, "org_dataset: missing required key"),
    ("annotation_config.annotation_pth", "x", "did you mean 'annotation_path'?"),
]


@pytest.mark.parametrize("where,value,message", BAD_DATASET, ids=[b[0] for b in BAD_DATASET])
def test_bad_dataset_config(where, value, message, dataset_config_dict, write_json, capsys):
    d = copy.deepcopy(dataset_config_dict)
    _set(d, where, value)
    path = write_json(d, "dataset_config.json")
    assert cli.main(["validate", "--dataset_spec", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and message in err


BAD_EXPERIMENT = [
    ("sampling.sampling_mode", "median",
     'sampling.sampling_mode = "median": must be one of average'),
    ("sampling.class_weights.fist", -1, "sampling.class_weights.fist = -1.0: must be >= 0"),
    ("uid_list.val_fraction", 0, "uid_list.val_fraction = 0.0: must be in (0, 1]"),
    ("uid_list.predefined_val_users", True,
     "uid_list.validation = []: must list users when predefined_val_users is true"),
    ("set_list.train_val", [], "set_list.train_val = []: must list at least one dataset"),
    ("image_feature_filter.train_val", {"*": [{"light": ["dim"]}]},
     'image_feature_filter.train_val.*[0].light = ["dim"]: must be string or integer'),
]


@pytest.mark.parametrize("where,value,message", BAD_EXPERIMENT, ids=[b[0] for b in BAD_EXPERIMENT])
def test_bad_dataset_experiment_config(where, value, message, dataset_experiment_dict,
                                       write_json, capsys):
    d = copy.deepcopy(dataset_experiment_dict)
    _set(d, where, value)
    path = write_json(d, "dataset_experiment_config.json")
    assert cli.main(["validate", "--experiment_spec", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and message in err


def test_invalid_json_names_line_and_column(write_json, capsys):
    path = write_json('{\n  "batch_size": 64,\n  "random_seed" 1\n}\n', "train_spec.json")
    assert cli.main(["validate", "-e", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}: invalid JSON at line 3 column 17: Expecting ':' delimiter" in err


def test_missing_spec_file(tmp_path, capsys):
    path = str(tmp_path / "nope.json")
    assert cli.main(["validate", "-e", path]) == 2
    assert f"{path}: file not found" in capsys.readouterr().err


def test_top_level_must_be_an_object(write_json, capsys):
    path = write_json("[1, 2]", "train_spec.json")
    assert cli.main(["validate", "-e", path]) == 2
    assert "(top level) = [1, 2]: must be a JSON object" in capsys.readouterr().err


def test_no_traceback_unless_debug(train_spec_dict, write_json, capsys):
    d = copy.deepcopy(train_spec_dict)
    d["model"]["num_layers"] = 19
    path = write_json(d)
    assert cli.main(["validate", "-e", path]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert cli.main(["--debug", "validate", "-e", path]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_round_trip_keeps_every_changed_value(train_spec_dict):
    d = copy.deepcopy(train_spec_dict)
    d["model"]["num_layers"] = 50
    d["dataset"]["augmentation"]["occlusion_aug"]["pixel_level"] = False
    spec = parse(ExperimentSpec, d)
    assert parse(ExperimentSpec, json.loads(dumps(spec))) == spec
    assert spec.model.num_layers == 50


# TAO's documented samples load as published
TAO_DOCS = SPECS.parent / "tests" / "data" / "tao_docs"


def test_tao_documented_dataset_samples_load_and_agree():
    from gesturenet_lib.specs import load_convert_specs

    ds, exp = load_convert_specs(str(TAO_DOCS / "dataset_config.json"),
                                 str(TAO_DOCS / "dataset_experiment_config.json"))
    # "/.../gesturenet/" in one file and "/.../gesturenet" in the other are the same folder
    assert ds.mount_dir_path == "/workspace/tao-experiments/gesturenet"
    assert (ds.org_data_dir, ds.post_data_dir) == ("original", "extracted")
    assert exp.mount_dir_path is None  # one place to look after reconciling
    assert exp.uid_list.uid_name == "user_id"
    assert exp.weighted_classes_not_in_classes == ["v"]  # accepted, reported


def test_neither_spec_giving_mount_dir_path_names_both_files(tmp_path):
    from gesturenet_lib.specs import SpecError, load_convert_specs

    ds, exp = tmp_path / "ds.json", tmp_path / "exp.json"
    ds.write_text(json.dumps({"org_dataset": "data"}))
    exp.write_text("{}")
    with pytest.raises(SpecError) as err:
        load_convert_specs(str(ds), str(exp))
    assert str(err.value) == (f"{ds}: mount_dir_path: missing required key (string), in this "
                              f"file or in {exp}")


def test_defaults_apply_when_neither_gives_the_folders(tmp_path):
    from gesturenet_lib.specs import load_convert_specs

    ds, exp = tmp_path / "ds.json", tmp_path / "exp.json"
    ds.write_text(json.dumps({"org_dataset": "data", "mount_dir_path": "m"}))
    exp.write_text(json.dumps({"org_data_dir": "raw"}))
    got, _ = load_convert_specs(str(ds), str(exp))
    assert (got.mount_dir_path, got.org_data_dir, got.post_data_dir) == (
        str(tmp_path / "m"), "raw", "extracted")


def test_validate_checks_that_the_two_dataset_specs_agree(tmp_path, capsys):
    ds, exp = tmp_path / "ds.json", tmp_path / "exp.json"
    ds.write_text(json.dumps({"org_dataset": "data", "mount_dir_path": "/a"}))
    exp.write_text(json.dumps({"mount_dir_path": "/b"}))
    assert cli.main(["validate", "--dataset_spec", str(ds), "--experiment_spec",
                     str(exp)]) == 2
    assert 'mount_dir_path = "/a", but' in capsys.readouterr().err
