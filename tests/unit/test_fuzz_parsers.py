"""Fuzz targets for the two parsers users feed directly. Any bytes into the
annotation parser give a HandRecord or a RecordError (a rejected record); any bytes into the
spec parser give a spec or a SpecError (exit 2). Never another exception."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesturenet_lib.data.annotations import DatasetLayout, parse_annotation
from gesturenet_lib.errors import RecordError
from gesturenet_lib.specs import (
    DatasetConfig,
    DatasetExperimentConfig,
    ExperimentSpec,
    SpecError,
    parse_text,
)
from tests.conftest import SPECS

LAYOUT = DatasetLayout("/mount", "original", "data", "annotation",
                       ("thumbs_up", "fist", "stop", "ok", "two", "random"), {"u1": {}})
GOOD = json.dumps({"task_path": "original/data/u1/s1/a.png", "completions": [{"result": [
    {"type": "choices", "value": {"choices": ["fist"]}},
    {"type": "rectanglelabels", "original_width": 64, "original_height": 48,
     "value": {"x": 10, "y": 10, "width": 50, "height": 50}}]}]})

# JSON-ish values: what a half-edited or hostile file holds
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _annotation(text: str) -> None:
    try:
        parse_annotation(text, "annotation/x.json", LAYOUT)
    except RecordError:
        pass


def _mutations(base: str):
    """Byte strings near a valid document: cut, spliced, with garbage inserted."""
    return st.tuples(st.integers(0, len(base)), st.integers(0, len(base)),
                     st.binary(max_size=40)).map(
        lambda t: (base.encode()[:t[0]] + t[2] + base.encode()[t[1]:]).decode(
            "utf-8", "replace"))


@FUZZ
@given(st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")))
def test_annotation_parser_any_bytes(text):
    _annotation(text)


@FUZZ
@given(_mutations(GOOD))
def test_annotation_parser_near_a_valid_file(text):
    _annotation(text)


def _key_paths(node, path=()):
    """The path of every key of every object in a JSON document."""
    if isinstance(node, dict):
        for key, inner in node.items():
            yield (*path, key)
            yield from _key_paths(inner, (*path, key))
    elif isinstance(node, list):
        for i, inner in enumerate(node):
            yield from _key_paths(inner, (*path, i))


KEY_PATHS = list(_key_paths(json.loads(GOOD)))


@FUZZ
@given(st.sampled_from(KEY_PATHS), values)
def test_annotation_parser_any_json_in_any_field(path, value):
    doc = json.loads(GOOD)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    _annotation(json.dumps(doc, allow_nan=True))


SPEC_TEXTS = {cls: (SPECS / name).read_text() for cls, name in (
    (ExperimentSpec, "train_spec.json"), (DatasetConfig, "dataset_config.json"),
    (DatasetExperimentConfig, "dataset_experiment_config.json"))}


def _spec(cls, text: str) -> None:
    try:
        parse_text(cls, text, "spec.json")
    except SpecError:
        pass


@FUZZ
@given(st.sampled_from(sorted(SPEC_TEXTS, key=str)), st.data())
def test_spec_parser_near_a_valid_file(cls, data):
    _spec(cls, data.draw(_mutations(SPEC_TEXTS[cls])))


@FUZZ
@given(st.sampled_from(sorted(SPEC_TEXTS, key=str)), values, st.data())
def test_spec_parser_any_json_in_any_field(cls, value, data):
    doc = json.loads(SPEC_TEXTS[cls])
    node, path = doc, []
    while isinstance(node, dict) and node:
        key = data.draw(st.sampled_from(sorted(node)))
        path.append(key)
        if not isinstance(node[key], dict) or data.draw(st.booleans()):
            node[key] = value
            break
        node = node[key]
    _spec(cls, json.dumps(doc, allow_nan=True))
