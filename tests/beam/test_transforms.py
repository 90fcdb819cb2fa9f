"""Each dataset_convert PTransform, tested with Beam's TestPipeline and assert_that."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import apache_beam as beam
import cv2
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from gesturenet_lib import io
from gesturenet_lib.data import convert_pipeline as cp
from gesturenet_lib.data import crop_step, cropping, dataset_file, dead_letters, write_step
from gesturenet_lib.data.annotations import DatasetLayout, HandRecord
from gesturenet_lib.data.geometry import PercentBox
from gesturenet_lib.data.splits import KPI, TRAIN, VALIDATION, SplitPlan, plan_splits
from tests.tao_tree import TaoTree

CLASSES = ("thumbs_up", "fist", "stop", "ok", "two", "random")


def _record(source="a.json", user="u1", session="s1", frame="000.png", label="fist",
            metadata=None, dataset="data"):
    return HandRecord(source=source, dataset=dataset, user_id=user, session=session,
                      image_path=f"original/{dataset}/{user}/{session}/{frame}", label=label,
                      box=PercentBox(25, 25, 50, 50), metadata=metadata or {})


def _layout(tree: TaoTree, users=None) -> DatasetLayout:
    return DatasetLayout(str(tree.root), "original", tree.dataset, "annotation", CLASSES,
                         users if users is not None else tree.users)


TRAIN_ALL = SplitPlan(frozenset(), frozenset(), frozenset({"u1", "u2"}))


def _read_hands(layouts, plan=TRAIN_ALL, filters=None, shards=None):
    return cp.ReadHands(shards or cp.whole_trees(layouts), cp.ParseAnnotation(layouts),
                        cp.AssignSplit(plan, ["data"], ["data"]),
                        cp.FilterByMetadata(filters or {}, {}), spread=False)


def _groups(items):
    """(split, record) items -> image groups of consecutive boxes of one image."""
    groups: list[tuple[str, list]] = []
    for item in items:
        if groups and groups[-1][0] == item[1].image_path:
            groups[-1][1].append(item)
        else:
            groups.append((item[1].image_path, [item]))
    return groups


def test_read_hands_sends_each_bad_record_to_dropped_with_its_reason(tmp_path, pipeline):
    tree = TaoTree(tmp_path)
    good = tree.hand("u1", "s1", "000.png", "fist")
    task = tree.image("u1", "s1", "001.png")
    bad = {
        tree.annotate("", "fist", raw="{not json"): "malformed JSON at line 1 column 2",
        tree.annotate(task, "wave"): "label 'wave' not in the class list",
        tree.annotate("/elsewhere/x.png", "fist"): "resolves outside mount_dir_path",
        tree.annotate("../../etc/x.png", "fist"): "resolves outside mount_dir_path",
        tree.annotate("", "", raw=json.dumps({"task_path": task})): "no completions[0].result",
        tree.annotate("", "", raw=json.dumps({"task_path": task, "completions": [
            {"result": [{"type": "choices", "value": {"choices": ["fist"]}}]}]})):
            "no hand box (rectanglelabels item)",
        tree.annotate("original/data/stranger/s1/x.png", "fist"):
            "user 'stranger' is not listed in the set file",
    }
    (tree.dataset_dir / "annotation" / "notes.txt").write_text("not an annotation")
    layout = _layout(tree, users={"u1": {"site": "lab"}})
    out = pipeline | _read_hands([layout])  # lists the annotation folder itself
    assert_that(out["groups"] | beam.FlatMap(lambda g: [
        (g[0], split, r.source, r.label, r.user_id, r.metadata) for split, r in g[1]]),
                equal_to([("original/data/u1/s1/000.png", TRAIN, good, "fist", "u1",
                           {"site": "lab"})]), label="groups")

    def reasons_match(actual):
        got = {d["source"]: d["reason"] for d in actual}
        assert set(got) == set(bad), got
        assert {d["kind"] for d in actual} == {dead_letters.REJECTED}
        for source, fragment in bad.items():
            assert fragment in got[source], (source, got[source])

    assert_that(out[dead_letters.DROPPED], reasons_match, label="dropped")
    result = pipeline.run()
    result.wait_until_finish()
    # Every dead letter is also a Beam counter (what a Dataflow or Dask dashboard shows),
    # named by kind and reason without its specifics.
    counters = {c.key.metric.name: c.committed for c in
                result.metrics().query()["counters"]
                if c.key.metric.namespace == cp.NAMESPACE}
    assert sum(v for k, v in counters.items() if k.startswith("rejected: ")) == len(bad)
    assert counters["rejected: malformed JSON at line 1 column 2"] == 1
    assert counters["rejected: label 'wave' not in the class list"] == 1
    assert counters["annotation files read"] == len(bad) + 1


def test_read_hands_passes_consecutive_boxes_of_one_image_as_one_group(tmp_path, pipeline):
    """One group per run of consecutive files naming one image; a box filtered out (its
    user in no set, its metadata matching a filter) leaves its image's group."""
    tree = TaoTree(tmp_path)
    a, b = tree.image("u1", "s1", "a.png"), tree.image("u1", "s1", "b.png")
    c = tree.image("u3", "s1", "c.png")
    for name, task, meta in (("1", a, None), ("2", a, None), ("3", a, {"light": "dark"}),
                             ("4", b, None), ("5", a, None), ("6", c, None)):
        tree.annotate(task, "fist", name=f"{name}.json", metadata=meta)
    out = pipeline | _read_hands([_layout(tree)], filters={"*": [{"light": "dark"}]})
    assert_that(out["groups"] | beam.Map(lambda g: (g[0][-5:], [r.source[-6:] for _, r in g[1]])),
                equal_to([("a.png", ["1.json", "2.json"]), ("b.png", ["4.json"]),
                          ("a.png", ["5.json"])]), label="groups")
    assert_that(out[dead_letters.DROPPED] | beam.Map(lambda d: (d["source"][-6:], d["kind"])),
                equal_to([("3.json", dead_letters.FILTERED), ("6.json", dead_letters.FILTERED)]),
                label="dropped")
    pipeline.run()


def _listing_tree(root: Path) -> tuple[TaoTree, list[str]]:
    """Annotation files at three depths, and a folder of many files."""
    tree = TaoTree(root)
    task = tree.image("u1", "s1", "a.png")
    names = ["top.json"] + [f"u{u}/s{s}/{f}.json" for u in range(3) for s in range(2)
                            for f in range(3)] + [f"flat/{f:03d}.json" for f in range(10)]
    for name in names:
        tree.annotate(task, "fist", name=name)
    (tree.dataset_dir / "annotation" / "u0" / "notes.txt").write_text("not an annotation")
    return tree, names


def test_listing_shards_cover_every_file_once_in_folders(tmp_path):
    tree, names = _listing_tree(tmp_path)
    layout = _layout(tree)
    root = layout.annotation_dir + "/"
    expected = sorted(root + n for n in names)
    for wanted in (1, 3, 8, 40):
        shards = cp.plan_listing([layout], wanted)
        listed = [path for shard in shards for _, path in cp.shard_files(shard)]
        assert sorted(listed) == expected, wanted  # every file, each once
        assert len(shards) >= min(wanted, 4 + 2), (wanted, shards)
        for shard in shards:  # a shard is a folder: its files lie in it
            files = [path for _, path in cp.shard_files(shard)]
            assert all(f.startswith(shard.folder + "/") for f in files)
            if not shard.recursive:
                assert all("/" not in f[len(shard.folder) + 1:] for f in files)
    # Out of folders, a folder of files is cut into contiguous parts.
    flat = [s for s in cp.plan_listing([layout], 40) if s.folder.endswith("/flat")]
    assert len(flat) > 1 and {s.parts for s in flat} == {len(flat)}
    assert [p for s in flat for _, p in cp.shard_files(s)] == sorted(
        root + n for n in names if n.startswith("flat/"))
    # The whole tree as one shard, in the order of io.list_files.
    assert [p for _, p in cp.shard_files(cp.whole_trees([layout])[0])] == [
        p for p in io.list_files(layout.annotation_dir) if p.endswith(".json")]


def test_assign_split_filters_users_in_no_set():
    plan = SplitPlan(frozenset({"k"}), frozenset({"v"}), frozenset({"t"}))
    assign = cp.AssignSplit(plan, kpi_datasets=["data"], train_val_datasets=["data", "other"])
    records = [_record("1", "k"), _record("2", "v"), _record("3", "t"), _record("4", "nobody"),
               _record("5", "k", dataset="other")]
    out = [assign(r) for r in records]
    assert [(o[0], o[1].source) for o in out if not isinstance(o, dead_letters.DeadLetter)] == [
        (KPI, "1"), (VALIDATION, "2"), (TRAIN, "3")]
    assert [(o.record["source"], o.record["kind"]) for o in out
            if isinstance(o, dead_letters.DeadLetter)] == [("4", dead_letters.FILTERED),
                                                            ("5", dead_letters.FILTERED)]


def test_filter_by_metadata_per_set_and_per_dataset():
    items = [(TRAIN, _record("1", metadata={"light": "dark"})),
             (TRAIN, _record("2", metadata={"light": "day", "site": "b"})),
             (KPI, _record("3", metadata={"light": "dark"})),
             (KPI, _record("4", metadata={"light": "day", "site": "b"}))]
    keep = cp.FilterByMetadata(train_val={"*": [{"light": "dark"}]},
                               kpi={"data": [{"light": "day", "site": "b"}]})
    out = [keep(item) for item in items]
    assert [o[1].source for o in out if not isinstance(o, dead_letters.DeadLetter)] == ["2", "3"]
    assert [(o.record["source"], o.record["reason"]) for o in out
            if isinstance(o, dead_letters.DeadLetter)] == [
        ("1", 'image_feature_filter {"light": "dark"}'),
        ("4", 'image_feature_filter {"light": "day", "site": "b"}')]


def test_an_empty_metadata_filter_is_no_filter():
    assert not cp.FilterByMetadata(train_val={"*": [], "data": [{}]}, kpi={}).active
    assert cp.FilterByMetadata(train_val={}, kpi={"data": [{"light": "dark"}]}).active


def test_sample_frames_keeps_every_nth_frame_per_session(pipeline):
    frames = [f"{i:03d}.png" for i in range(7)]
    items = [(TRAIN, _record(f"s1-{f}", session="s1", frame=f)) for f in reversed(frames)]
    items += [(TRAIN, _record(f"s2-{f}", session="s2", frame=f)) for f in frames[:2]]
    items.append((TRAIN, _record("s1-000.png-second-box", session="s1", frame="000.png")))
    out = pipeline | beam.Create(_groups(items)) | cp.SampleFrames(3)
    # kept boxes of one image come out as one group, wherever their files were
    assert_that(out["kept"] | beam.Map(lambda g: sorted(r.source for _, r in g[1])),
                equal_to([["s1-000.png", "s1-000.png-second-box"], ["s1-003.png"],
                          ["s1-006.png"], ["s2-000.png"]]), label="kept")
    assert_that(out[dead_letters.SAMPLED_OUT] | beam.combiners.Count.Globally(), equal_to([5]),
                label="sampled")
    pipeline.run()


def test_crop_hands_writes_crops_and_rejects_bad_images(tmp_path, pipeline):
    tree = TaoTree(tmp_path)
    task = tree.image("u1", "s1", "000.png", width=100, height=50)
    image = cv2.imread(str(tmp_path / task))
    jpeg = tree.image("u1", "s1", "001.jpg", width=100, height=50)
    data = (tmp_path / jpeg).read_bytes()
    (tmp_path / jpeg).write_bytes(data[: len(data) // 2])  # truncated
    garbage = tree.image("u1", "s1", "002.png")
    (tmp_path / garbage).write_bytes(b"not an image")

    def rec(source, path, box, ow=100, oh=50):
        return (TRAIN, HandRecord(source, "data", "u1", "s1", path, "fist", PercentBox(*box),
                                  ow, oh, {}))

    items = [rec("good", task, (10, 20, 20, 40)), rec("zero", task, (10, 20, 0, 40)),
             rec("outside", task, (90, 20, 20, 40)), rec("aspect", task, (10, 20, 20, 40), 50, 50),
             rec("trunc", jpeg, (10, 20, 20, 40)), rec("garbage", garbage, (10, 10, 5, 5)),
             rec("missing", "original/data/u1/s1/nope.png", (10, 10, 5, 5))]
    settings = cropping.CropSettings(str(tmp_path), "extracted", "v1", True, 1.0)
    out = pipeline | beam.Create(_groups(items)) | crop_step.CropHands(settings)

    def check_entries(entries):
        assert len(entries) == 1
        e = entries[0]
        assert e["bbox_coordinates"] == [[10, 10], [30, 10], [10, 30], [30, 30]]
        assert e["bbox_original"] == [[10, 10], [30, 10], [10, 30], [30, 30]]
        crop = cv2.imread(str(tmp_path / e["bbox_path"]))
        assert np.array_equal(crop, image[10:30, 10:30])

    assert_that(out["entries"] | beam.FlatMap(cropping.unpack) | beam.Map(dataset_file.row_entry),
                check_entries, label="entries")
    rejected = out[dead_letters.REJECTED]
    assert_that(rejected | beam.Map(lambda d: (d["source"], d["reason"].split(" (")[0])),
                equal_to([("zero", "box has zero area"), ("outside", "box outside the image"),
                          ("aspect", "image is 100x50 but the annotation's original size is "
                                     "50x50"),
                          ("trunc", "truncated image"), ("garbage", "unreadable image"),
                          ("missing", "missing image original/data/u1/s1/nope.png")]),
                label="rejected")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]
                if c.key.metric.namespace == cp.NAMESPACE}
    assert counters["crops"] == 1 and counters["rejected: box has zero area"] == 1


def test_frame_sampling_at_rate_one_keeps_everything_and_runs_no_step(pipeline):
    items = [(TRAIN, _record(f"{i}", frame=f"{i:03d}.png")) for i in range(3)]
    out = pipeline | beam.Create(_groups(items)) | "Sample" >> cp.SampleFrames(1)
    assert set(out) == {"kept"}  # nothing can be sampled out
    assert_that(out["kept"] | beam.Map(lambda g: g[1][0][1].source), equal_to(["0", "1", "2"]))
    pipeline.run()
    assert not any(t.unique_name.startswith("Sample/") for t in
                   pipeline.to_runner_api().components.transforms.values())


def test_the_process_pool_gives_the_same_crops(tmp_path, monkeypatch):
    """The crop step with a pool of processes (the local runner's) and without (elsewhere)
    writes the same entries, including for an image whose boxes come in two groups."""
    monkeypatch.setattr(crop_step.CropImageFn, "CHUNK", 2)  # several chunks in flight at once
    tree = TaoTree(tmp_path)
    paths = [tree.image("u1", "s1", f"{i:03d}.png", width=80, height=60) for i in range(3)]
    boxes = [(10, 10, 20, 20), (50, 40, 30, 30), (0, 0, 40, 50)]
    items = [(TRAIN, HandRecord(f"{p}-{j}", "data", "u1", "s1", p, "fist", PercentBox(*b),
                                80, 60, {}))
             for j, b in enumerate(boxes) for p in paths]  # one image's boxes are apart
    results = {}  # a pipeline works on copies of its functions: results travel by file
    for processes in (1, 2):
        settings = cropping.CropSettings(str(tmp_path), "extracted", f"v{processes}", True, 1.2)
        with BeamTestPipeline() as p:
            out = p | beam.Create(_groups(items)) | crop_step.CropHands(settings, processes)
            assert_that(out[dead_letters.REJECTED], equal_to([]), label="no rejects")
            crops = out["entries"] | beam.FlatMap(cropping.unpack) | beam.Map(
                dataset_file.row_entry) | beam.Map(
                lambda e: (e["source"], e["bbox_coordinates"],
                           cv2.imread(str(tmp_path / e["bbox_path"])).tobytes()))
            assert_that(crops | beam.combiners.Count.Globally(), equal_to([9]), label="count")
            dump = tmp_path / f"results{processes}.pickle"
            _ = crops | beam.combiners.ToList() | beam.Map(
                lambda rows, dump=dump: dump.write_bytes(pickle.dumps(sorted(rows))))
        results[processes] = pickle.loads(dump.read_bytes())
    assert results[1] == results[2]


def test_write_dataset_json_accounts_for_every_box(tmp_path, pipeline):
    users = {f"u{i}" for i in range(6)}
    plan = plan_splits(users, {"u0"}, "v1", 0.2, None, 0)

    def entry(i, user, label):
        return dataset_file.entry_row(
            {"full_image_path": f"img{i}.png", "bbox_coordinates": [], "bbox_original": [],
             "bbox_path": f"crop{i}.png", "label": label, "user_id": user, "dataset": "data",
             "session": "s", "source": f"a{i}.json", "image_size": [1, 1],
             "metadata": {"id": 2**70} if i == 3 else {}}, plan.split_of(user))

    entries = [entry(i, f"u{i % 6}", "fist" if i % 3 else "stop") for i in range(12)]
    dropped = [dead_letters.dropped("bad.json", "box has zero area", dead_letters.REJECTED),
               dead_letters.dropped("f.json", "image_feature_filter {}", dead_letters.FILTERED)]
    settings = write_step.OutputSettings(str(tmp_path / "data.json"), CLASSES, 0, "v1", False, {})
    ent = pipeline | "E" >> beam.Create([cropping.pack(entries[:5]), cropping.pack(entries[5:])])
    drp = pipeline | "D" >> beam.Create(dropped)
    out = (ent, drp) | write_step.WriteDatasetJson(settings, plan)
    assert_that(out | beam.combiners.Count.Globally(), equal_to([12]))
    pipeline.run()
    doc = json.loads(Path(tmp_path / "data.json").read_text())
    stats = doc["stats"]
    assert stats["boxes_read"] == 14 == stats["crops"] + stats["rejected"] + stats["filtered"]
    assert doc["classes"] == {name: i for i, name in enumerate(CLASSES)}
    users_by_split = {s: {e["user_id"] for e in doc[s]["images"]} for s in
                      ("train_set", "validation_set", "kpi_set")}
    images = [e for s in ("train_set", "validation_set", "kpi_set") for e in doc[s]["images"]]
    assert sorted(e["source"] for e in images) == sorted(f"a{i}.json" for i in range(12))
    assert all("split" not in e for e in images)  # the split is where the entry is
    assert [e["metadata"] for e in images if e["source"] == "a3.json"] == [{"id": 2**70}]
    assert users_by_split["kpi_set"] == {"u0"}
    assert not users_by_split["train_set"] & users_by_split["validation_set"]
    rejects = [json.loads(line) for line in (tmp_path / "data_rejects.jsonl").read_text()
               .splitlines()]
    assert rejects == [{"source": "bad.json", "reason": "box has zero area"}]


def test_data_json_bytes_are_compact_key_sorted_utf8_even_with_huge_integers():
    doc = {"b": [1, {"z": "é", "a": 0.5}], "a": None}
    assert dataset_file.document_bytes(doc) == '{"a":null,"b":[1,{"a":0.5,"z":"é"}]}\n'.encode()
    huge = {"metadata": {"id": 2**70}, "label": "fist"}  # orjson stops at 64 bits
    assert dataset_file.document_bytes(huge) == \
        f'{{"label":"fist","metadata":{{"id":{2**70}}}}}\n'.encode()


def test_entry_rows_are_flat_and_carry_the_entry_as_data_json_writes_it():
    """The rows the crop step sends to the last step hold strings only (Python's collector
    does not track such dicts: tens of thousands of nested entries made unpickling there
    several times slower) and the entry's own JSON, as it appears inside data.json."""
    import gc

    entry = {"full_image_path": "img.png", "bbox_coordinates": [[1, 2], [3, 2], [1, 4], [3, 4]],
             "bbox_path": "crop.png", "label": "fist", "user_id": "u", "source": "a.json",
             "metadata": {"z": "é", "a": 1}}
    row = pickle.loads(pickle.dumps(dataset_file.entry_row(entry, TRAIN)))
    assert not gc.is_tracked(row)
    assert row["split"] == TRAIN and row["label"] == "fist"
    assert dataset_file.row_entry(row) == entry
    doc = dataset_file.dataset_document({s: [row] if s == TRAIN else [] for s in
                                         dataset_file.SETS}, CLASSES, {}, None, None)
    written = dataset_file.document_bytes(doc)
    assert json.loads(written)[TRAIN]["images"] == [entry]
    assert dataset_file.json_bytes(entry) in written
