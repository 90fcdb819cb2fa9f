"""Class resampling by the documented "average" rule."""

from __future__ import annotations

from collections import Counter

from gesturenet_lib.data.class_sampling import balance_classes, class_targets


def _records(counts):
    return [{"label": label, "source": f"{label}{i}", "full_image_path": f"{label}{i}.png"}
            for label, n in counts.items() for i in range(n)]


def test_targets_follow_the_weights_and_keep_the_total():
    targets = class_targets({"a": 80, "b": 20}, {"a": 1, "b": 1})
    assert targets == {"a": 50, "b": 50}


def test_downsample_and_oversample_exactly():
    result = balance_classes(_records({"a": 80, "b": 20}), {"a": 0.5, "b": 0.5}, "v1")
    counts = Counter(r["label"] for r in result.records)
    assert counts == {"a": 50, "b": 50}
    assert len(result.sampled_out) == 30 and result.duplicates == 30
    # every b record appears 2 or 3 times; no record is invented
    per_source = Counter(r["source"] for r in result.records if r["label"] == "b")
    assert set(per_source.values()) == {2, 3} and len(per_source) == 20


def test_unlisted_classes_are_left_alone_and_zero_weight_drops():
    result = balance_classes(_records({"a": 10, "b": 10, "c": 7}), {"a": 1.0, "b": 0.0}, "v1")
    counts = Counter(r["label"] for r in result.records)
    assert counts == {"a": 20, "c": 7}


def test_resampling_is_deterministic_and_salted():
    recs = _records({"a": 30, "b": 5})
    one = balance_classes(recs, {"a": 1, "b": 1}, "v1")
    two = balance_classes(list(reversed(recs)), {"a": 1, "b": 1}, "v1")
    other = balance_classes(recs, {"a": 1, "b": 1}, "v2")
    assert one.records == two.records
    assert {r["source"] for r in one.sampled_out} != {r["source"] for r in other.sampled_out}
