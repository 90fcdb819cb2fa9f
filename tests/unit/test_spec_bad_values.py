"""Specs that could train a NaN model, crash or silently drop a
value are one line naming the file, the field and the value, exit 2."""

from __future__ import annotations

import json

import pytest

from gesturenet_lib import cli
from tests.conftest import SPECS


def _validate(tmp_path, capsys, text: str, flag: str = "-e") -> str:
    path = tmp_path / "spec.json"
    path.write_text(text)
    assert cli.main(["validate", flag, str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def _train_text(**replace: str) -> str:
    """The example train spec with some values replaced by raw JSON tokens."""
    text = (SPECS / "train_spec.json").read_text()
    for key, raw in replace.items():
        doc_value = {"initial_lrate": '"initial_lrate": 0.001', "batch_size": '"batch_size": 32'}
        text = text.replace(doc_value[key], f'"{key}": {raw}', 1)
    return text


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_a_spec_error(tmp_path, capsys, raw):
    err = _validate(tmp_path, capsys, _train_text(initial_lrate=raw))
    assert "trainer.top_training.initial_lrate = " in err
    assert "must be a finite number" in err


@pytest.mark.parametrize("key, spec_file, flag", [
    ("bbox_enlarge_ratio", "dataset_config.json", "--dataset_spec"),
    ("val_fraction", "dataset_experiment_config.json", "--experiment_spec"),
])
def test_nan_in_the_dataset_specs(tmp_path, capsys, key, spec_file, flag):
    doc = json.loads((SPECS / spec_file).read_text())
    (doc["uid_list"] if key == "val_fraction" else doc)[key] = "@@"
    err = _validate(tmp_path, capsys, json.dumps(doc).replace('"@@"', "NaN"), flag)
    assert f"{key} = NaN: must be a finite number" in err


def test_nan_class_weight(tmp_path, capsys):
    doc = json.loads((SPECS / "dataset_experiment_config.json").read_text())
    doc["sampling"]["class_weights"]["fist"] = "@@"
    err = _validate(tmp_path, capsys, json.dumps(doc).replace('"@@"', "NaN"),
                    "--experiment_spec")
    assert "sampling.class_weights.fist = NaN: must be a finite number" in err


def test_a_5000_digit_integer_and_a_spec_nested_100000_deep(tmp_path, capsys):
    err = _validate(tmp_path, capsys, _train_text(batch_size="9" * 5000))
    assert "invalid JSON" in err and "digits" in err
    err = _validate(tmp_path, capsys, '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "invalid JSON: nested too deeply" in err


def test_a_key_given_twice_names_the_key_and_its_line(tmp_path, capsys):
    text = (SPECS / "train_spec.json").read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if '"batch_size"' in line)
    lines.insert(at + 1, '    "batch_size": 8,')
    err = _validate(tmp_path, capsys, "\n".join(lines))
    assert f'key "batch_size" is given twice in one object (line {at + 2})' in err


def test_the_same_key_in_two_objects_is_fine(tmp_path):
    from gesturenet_lib.specs.base import duplicate_key_line, load_json_text

    text = '{"a": {"enable": true}, "b": {"enable": false}, "c": [{"k": 1}, {"k": 2}]}'
    assert load_json_text(text, "f.json")["b"] == {"enable": False}
    assert duplicate_key_line(text) is None
