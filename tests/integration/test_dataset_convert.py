"""dataset_import + dataset_convert end to end through the CLI (small data, marked slow)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from gesturenet_lib import cli
from gesturenet_lib.data.splits import SPLITS
from tests.conftest import SAMPLE, SPECS
from tests.tao_tree import TaoTree

pytestmark = pytest.mark.slow
LOCAL = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _convert(ds, exp, out, name="v1", k=0, extra=()):
    return cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                     "--k_folds", str(k), "--output_filename", str(out), "--experiment_name",
                     name, *LOCAL, *extra])


@pytest.fixture(scope="module")
def hagrid(tmp_path_factory):
    """The bundled HaGRID sample imported and converted with the repo's example specs."""
    root = tmp_path_factory.mktemp("hagrid")
    for name in ("dataset_config.json", "dataset_experiment_config.json"):
        (root / "specs").mkdir(exist_ok=True)
        (root / "specs" / name).write_text((SPECS / name).read_text())
    dataset = root / "workspace" / "original" / "hagrid"
    assert cli.main(["dataset_import", "--format", "hagrid", "--images",
                     str(SAMPLE / "dataset"), "--annotations", str(SAMPLE / "annotations"),
                     "--output", str(dataset)]) == 0
    out = root / "workspace" / "data.json"
    ds, exp = str(root / "specs" / "dataset_config.json"), str(
        root / "specs" / "dataset_experiment_config.json")
    assert _convert(ds, exp, out) == 0
    return root, ds, exp, out


def test_hagrid_sample_converts_with_zero_rejects(hagrid):
    root, _, _, out = hagrid
    doc = json.loads(out.read_text())
    stats = doc["stats"]
    assert stats["rejected"] == 0 and stats["boxes_read"] == 545 == stats["crops"]
    assert stats["images_read"] == 464
    users = {s: {e["user_id"] for e in doc[s]["images"]} for s in SPLITS}
    assert not (users["train_set"] & users["validation_set"])
    assert not (users["kpi_set"] & (users["train_set"] | users["validation_set"]))
    kpi = set(json.loads((SPECS / "dataset_config.json").read_text())["kpi_users"])
    assert users["kpi_set"] == kpi
    first = doc["train_set"]["images"][0]
    assert (root / "workspace" / first["bbox_path"]).exists()
    assert (root / "workspace" / first["full_image_path"]).exists()
    (x0, y0), (x1, y1) = first["bbox_coordinates"][0], first["bbox_coordinates"][3]
    assert x1 > x0 and y1 > y0


def test_hagrid_set_file_carries_the_attribution(hagrid):
    root = hagrid[0]
    set_file = json.loads((root / "workspace/original/hagrid/hagrid.json").read_text())
    assert "HaGRID" in set_file["metadata"]["attribution"]
    assert len(set_file["users"]) == 352


def test_same_inputs_give_a_byte_identical_data_json_even_with_two_workers(hagrid, tmp_path):
    _, ds, exp, out = hagrid
    again = tmp_path / "data.json"
    rc = cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                   "--k_folds", "0", "--output_filename", str(again), "--experiment_name", "v1",
                   "--direct_running_mode=multi_processing", "--direct_num_workers=2",
                   "--no_tfds"])
    assert rc == 0
    first, second = json.loads(out.read_text()), json.loads(again.read_text())
    first.pop("tfds_dir"), first.pop("tfds_splits")
    assert first == second
    # compact, key-sorted UTF-8 JSON
    assert json.dumps(first, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" \
        == again.read_text()
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats == second["stats"]  # the statistics alone, beside it


def test_tfds_dataset_opens_with_builder_from_directory(hagrid):
    import tensorflow_datasets as tfds

    root, _, _, out = hagrid
    doc = json.loads(out.read_text())
    builder = tfds.builder_from_directory(str(root / "workspace" / doc["tfds_dir"]))
    assert builder.info.splits["train"].num_examples == len(doc["train_set"]["images"])
    assert builder.info.splits["kpi"].num_examples == len(doc["kpi_set"]["images"])
    example = next(iter(builder.as_dataset(split="validation").take(1)))
    assert example["image"].shape[-1] == 3


def _bad_tree(tmp_path) -> tuple[TaoTree, dict[str, str]]:
    """A tree with good hands and one of every kind of bad record."""
    tree = TaoTree(tmp_path)
    for u in range(8):
        for f in range(4):
            tree.hand(f"u{u}", "s1", f"{f:03d}.png", ["fist", "stop", "two"][(u + f) % 3],
                      metadata={"light": "dark" if (u, f) == (1, 1) else "day"})
    task = tree.image("u0", "s2", "bad.png")
    (tmp_path / task).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    bad = {
        tree.annotate("", "", raw="{oops"): "malformed JSON",
        tree.annotate("original/data/u0/s2/missing.png", "fist"): "missing image",
        tree.annotate(task, "fist"): "truncated image",
        tree.annotate(tree.image("u0", "s3", "a.png"), "fist", box=(90, 10, 20, 20)):
            "box outside the image",
        tree.annotate(tree.image("u0", "s3", "b.png"), "fist", box=(10, 10, 0, 20)):
            "box has zero area",
        tree.annotate(tree.image("u0", "s3", "c.png"), "wave"): "not in the class list",
        tree.annotate("/somewhere/else.png", "fist"): "outside mount_dir_path",
    }
    return tree, bad


def test_every_bad_record_is_reported_and_the_good_ones_come_out(tmp_path, capsys):
    tree, bad = _bad_tree(tmp_path)
    ds, exp = tree.specs(kpi_users=["u7"], experiment={
        "image_feature_filter": {"train_val": {"*": [{"light": "dark"}]}, "kpi": {}}})
    out = tmp_path / "out" / "data.json"
    assert _convert(ds, exp, out, extra=["--no_tfds"]) == 0
    doc = json.loads(out.read_text())
    rejects = [json.loads(x) for x in (tmp_path / "out/data_rejects.jsonl").read_text()
               .splitlines()]
    by_source = {r["source"]: r["reason"] for r in rejects}
    assert set(by_source) == set(bad)
    for source, fragment in bad.items():
        assert fragment in by_source[source]
    s = doc["stats"]
    assert s["crops"] == 31 and s["filtered"] == 1 and s["rejected"] == len(bad)
    assert s["boxes_read"] == s["crops"] + s["rejected"] + s["filtered"] + s["sampled_out"]
    assert {e["user_id"] for e in doc["kpi_set"]["images"]} == {"u7"}
    printed = capsys.readouterr().out
    assert f"check: {s['boxes_read']} = 31 + {len(bad)} + 1 + 0" in printed


def test_sampling_rate_folds_and_class_weights(tmp_path):
    tree, _ = _bad_tree(tmp_path)
    ds, exp = tree.specs(sampling_rate=2, experiment={"sampling": {
        "use_class_weights": True, "class_weights": {"fist": 1, "stop": 1, "two": 2}}})
    out = tmp_path / "data.json"
    assert _convert(ds, exp, out, k=3, extra=["--no_tfds"]) == 0
    folds = [json.loads((tmp_path / f"data_fold{i}.json").read_text()) for i in range(3)]
    assert json.loads(out.read_text()) == folds[0]
    validation_users = [{e["user_id"] for e in f["validation_set"]["images"]} for f in folds]
    assert set().union(*validation_users) == {f"u{i}" for i in range(8)}
    assert sum(map(len, validation_users)) == 8
    for f in folds:
        s = f["stats"]
        assert s["sampled_out_by_reason"]["sampling_rate 2"] == 16 + 2  # 4 frames -> 2; s3: 3->2
        assert s["boxes_read"] == s["crops"] + s["rejected"] + s["filtered"] + s["sampled_out"]
        train = [e["label"] for e in f["train_set"]["images"]]
        n = len(train)
        assert abs(train.count("two") - n / 2) <= 1


@pytest.mark.parametrize("extra", [["--no_tfds"], []], ids=["no_tfds", "tfds"])
def test_nothing_written_exits_2(tmp_path, capsys, extra):
    """Every box rejected: one line with the reason and exit 2, with or without the TFDS
    shards (no traceback from a TFDS folder that was never made)."""
    tree = TaoTree(tmp_path)
    tree.image("u1", "s1", "x.png")
    tree.annotate("original/data/u1/s1/x.png", "wave")
    ds, exp = tree.specs()
    assert _convert(ds, exp, tmp_path / "data.json", extra=extra) == 2
    err = capsys.readouterr().err
    assert "no crop was written (1 boxes read: 1 rejected" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_changed_settings_under_the_same_experiment_name_exit_2(tmp_path, capsys):
    tree = TaoTree(tmp_path)
    tree.hand("u1", "s1", "a.png", "fist")
    tree.hand("u2", "s1", "a.png", "stop")
    ds, exp = tree.specs(enlarge=1.0)
    assert _convert(ds, exp, tmp_path / "d.json", extra=["--no_tfds"]) == 0
    assert _convert(ds, exp, tmp_path / "d.json", extra=["--no_tfds"]) == 0  # resumable
    ds, exp = tree.specs(enlarge=1.5)
    assert _convert(ds, exp, tmp_path / "d.json", extra=["--no_tfds"]) == 2
    assert "--experiment_name v1" in capsys.readouterr().err


def test_missing_dataset_folder_is_one_line(tmp_path, capsys):
    tree = TaoTree(tmp_path)
    ds, exp = tree.specs()
    assert _convert(ds, exp, tmp_path / "d.json") == 2
    err = capsys.readouterr().err
    assert f"{ds}: dataset folder" in err and "not found" in err


def test_unknown_flags_reach_beam_and_are_refused_elsewhere(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate", "-e", str(SPECS / "train_spec.json"), "--runner", "X"])
    assert exc.value.code == 2
    tree = TaoTree(tmp_path)
    tree.hand("u1", "s1", "a.png", "fist")
    tree.hand("u2", "s1", "a.png", "fist")
    ds, exp = tree.specs()
    rc = cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                   "--output_filename", str(tmp_path / "d.json"), "--experiment_name", "v1",
                   "--runner", "DirectRunner", "--direct_num_workers", "1", "--no_tfds"])
    assert rc == 0
    assert Path(tmp_path / "d.json").exists()


def test_uid_name_keeps_each_person_in_one_split(tmp_path):
    """uid_list.uid_name: six user folders, three people named by the set
    file's "person" field; every split and fold is disjoint by person, not by folder."""
    tree = TaoTree(tmp_path)
    people = {f"f{i}": {"person": f"p{i // 2}"} for i in range(6)}  # f0,f1 -> p0 ...
    for folder in people:
        for frame in range(2):
            tree.hand(folder, "s1", f"{frame}.png", "fist")
    tree.write_set_file(people)
    ds, exp = tree.specs(kpi_users=["p2"], experiment={"uid_list": {
        "uid_name": "person", "val_fraction": 0.5}})
    out = tmp_path / "data.json"
    assert _convert(ds, exp, out, k=2, extra=["--no_tfds"]) == 0
    for fold in (0, 1):
        doc = json.loads((tmp_path / f"data_fold{fold}.json").read_text())
        users = {s: {e["user_id"] for e in doc[s]["images"]} for s in SPLITS}
        assert users["kpi_set"] == {"p2"}
        assert users["train_set"] | users["validation_set"] == {"p0", "p1"}
        assert not users["train_set"] & users["validation_set"]
        assert len(doc["kpi_set"]["images"]) == 4  # both folders of p2
    entry = json.loads(out.read_text())["kpi_set"]["images"][0]
    assert entry["bbox_path"].split("/")[3] in {"f4", "f5"}  # crops stay under the folders


def test_the_shared_keys_may_come_from_the_experiment_spec(tmp_path, capsys):
    """TAO's experiment sample repeats mount_dir_path / org_data_dir / post_data_dir: one file
    may give them alone; both must agree."""
    tree = TaoTree(tmp_path)
    tree.hand("u1", "s1", "a.png", "fist")
    tree.hand("u2", "s1", "a.png", "stop")
    ds, exp = tree.specs()
    ds_doc = json.loads(Path(ds).read_text())
    exp_doc = json.loads(Path(exp).read_text())
    for key in ("mount_dir_path", "post_data_dir"):
        exp_doc[key] = ds_doc.pop(key)
    exp_doc["post_data_dir"] = "crops_here"
    exp_doc["mount_dir_path"] = "."  # relative to the experiment spec's own folder
    Path(ds).write_text(json.dumps(ds_doc))
    Path(exp).write_text(json.dumps(exp_doc))
    assert _convert(ds, exp, tmp_path / "d.json", extra=["--no_tfds"]) == 0
    assert list((tmp_path / "crops_here" / "data" / "v1").rglob("*.png"))

    ds_doc["post_data_dir"] = "elsewhere"
    Path(ds).write_text(json.dumps(ds_doc))
    assert _convert(ds, exp, tmp_path / "d.json", extra=["--no_tfds"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"gesturenet dataset_convert: error: {ds}: post_data_dir = \"elsewhere\", "
                   f"but {exp}: post_data_dir = \"crops_here\"; the two spec files must give "
                   "the same value (or give it in one only)")


def test_a_class_weight_for_a_class_not_in_the_list_acts_on_nothing(tmp_path, capsys):
    """TAO's sample weighs {"thumbs_up": 0.5, "v": 0.5}: "v" has no records, so thumbs_up
    keeps all of its records (the weights of real classes alone are normalised); the summary
    and the stats say so."""
    tree = TaoTree(tmp_path)
    for i in range(8):
        tree.hand(f"u{i}", "s1", "a.png", "thumbs_up" if i % 2 else "fist")
    ds, exp = tree.specs(experiment={"sampling": {"use_class_weights": True, "class_weights": {
        "thumbs_up": 0.5, "v": 0.5}}, "uid_list": {"val_fraction": 0.25}})
    assert _convert(ds, exp, tmp_path / "d.json", extra=["--no_tfds"]) == 0
    out = capsys.readouterr().out
    assert "class_weights names classes not in the class list" in out
    doc = json.loads((tmp_path / "d.json").read_text())
    train = [e["label"] for e in doc["train_set"]["images"]]
    assert doc["stats"]["sampled_out"] == 0 and doc["stats"]["class_weights_not_in_classes"] == [
        "v"]
    assert train.count("thumbs_up") + train.count("fist") == len(train) == 6


def test_hagrid_import_reports_every_record_it_cannot_use(tmp_path):
    """Each refused HaGRID record is one line of the rejects file, with its reason; the good
    ones are imported whatever their neighbours are."""
    images, annotations = tmp_path / "images", tmp_path / "annotations" / "train"
    images.mkdir()
    annotations.mkdir(parents=True)
    for name in ("good", "other", "nolabel", "nouser", "uneven"):
        cv2.imwrite(str(images / f"{name}.jpg"), np.full((40, 60, 3), 128, np.uint8))
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    box = [0.1, 0.1, 0.5, 0.5]
    (annotations / "like.json").write_text(json.dumps({
        "good": {"bboxes": [box, box], "labels": ["like", "peace"], "user_id": "u1"},
        "other": {"bboxes": [box], "labels": ["three"], "user_id": "u2"},  # * -> random
        "nouser": {"bboxes": [box], "labels": ["like"]},
        "uneven": {"bboxes": [box, box], "labels": ["like"], "user_id": "u3"},
        "gone": {"bboxes": [box], "labels": ["like"], "user_id": "u4"},
        "broken": {"bboxes": [box], "labels": ["like"], "user_id": "u5"}}))
    (annotations / "bad.json").write_text("{ not json")
    class_map = tmp_path / "map.json"
    class_map.write_text(json.dumps({"like": "thumbs_up", "peace": "two", "three": "random"}))
    (annotations / "nolabel.json").write_text(json.dumps({
        "nolabel": {"bboxes": [box], "labels": ["rock"], "user_id": "u6"}}))
    out = tmp_path / "workspace" / "original" / "hagrid"
    assert cli.main(["dataset_import", "--format", "hagrid", "--images", str(images),
                     "--annotations", str(tmp_path / "annotations"), "--output", str(out),
                     "--class_map", str(class_map)]) == 0
    rejects = {r["source"]: r["reason"] for r in map(json.loads, (
        tmp_path / "workspace/original/hagrid_import_rejects.jsonl").read_text().splitlines())}
    assert rejects == {
        "train/bad.json": "malformed JSON at line 1",
        "train/like.json:broken": "unreadable image",
        "train/like.json:gone#0": "missing image",
        "train/like.json:nouser#0": "no user_id",
        "train/like.json:uneven#0": "bboxes and labels differ in length",
        "train/nolabel.json:nolabel#0": "label 'rock' not in the class map"}
    written = sorted(p.name for p in (out / "annotation").rglob("*.json"))
    assert written == ["good_0.json", "good_1.json", "other_0.json"]
    doc = json.loads(next((out / "annotation").rglob("good_1.json")).read_text())
    assert doc["completions"][0]["result"][0]["value"]["choices"] == ["two"]
    assert doc["task_path"] == "original/hagrid/u1/like/good.jpg"
    assert json.loads((out / "hagrid.json").read_text())["users"] == {"u1": {}, "u2": {}}


def _phone_photo(path: Path, orientation: int) -> np.ndarray:
    """A JPEG stored 96x48 with an EXIF orientation, a red patch in the stored grid's top-left
    corner; returns the image as displayed (the orientation applied)."""
    from PIL import Image

    stored = np.zeros((48, 96, 3), np.uint8)
    stored[:24, :24] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, "JPEG", exif=exif.tobytes(), quality=95)
    turn = {1: lambda a: a, 3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1),
            8: lambda a: np.rot90(a, 1)}
    return turn[orientation](stored)


def _red_box(displayed: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(displayed[:, :, 0] > 128)
    h, w = displayed.shape[:2]
    return (100 * xs.min() / w, 100 * ys.min() / h, 100 * (xs.max() + 1 - xs.min()) / w,
            100 * (ys.max() + 1 - ys.min()) / h)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_phone_photos_with_an_exif_orientation_are_cut_where_the_hand_is(tmp_path, orientation):
    """One rule: a box is drawn on the photo as displayed (its EXIF orientation applied), as
    Label Studio shows it. An annotation whose original size is the stored grid of a photo
    whose orientation swaps its axes (6, 8) was drawn on that grid; it is turned with the
    photo. Either way the crop holds the red patch."""
    tree = TaoTree(tmp_path)
    task = tree.image("u1", "s1", "photo.jpg")
    displayed = _phone_photo(tree.root / task, orientation)
    height, width = displayed.shape[:2]
    tree.annotate(task, "fist", box=_red_box(displayed), width=width, height=height)
    if orientation in (6, 8):
        tree.annotate(task, "fist", box=(0.0, 0.0, 25.0, 50.0), width=96, height=48)
    tree.annotate(task, "fist", box=_red_box(displayed), width=width + 7, height=height)
    ds, exp = tree.specs()
    out = tmp_path / "data.json"
    assert _convert(ds, exp, out, extra=["--no_tfds"]) == 0
    doc = json.loads(out.read_text())
    crops = [entry for split in SPLITS for entry in doc[split]["images"]]
    assert len(crops) == (2 if orientation in (6, 8) else 1)
    for entry in crops:
        crop = cv2.imread(str(tmp_path / entry["bbox_path"]))
        centre = crop[crop.shape[0] // 2, crop.shape[1] // 2]
        assert centre[2] > 200 and centre[0] < 60, (entry["bbox_path"], centre)  # red (BGR)
    rejects = [json.loads(line) for line in (tmp_path / "data_rejects.jsonl").read_text()
               .splitlines()]
    assert len(rejects) == 1 and "different aspect ratio" in rejects[0]["reason"]


def test_hagrid_phone_photo_imports_at_its_displayed_size_and_converts(tmp_path):
    """A HaGRID photo stored with EXIF orientation 6: the import records the size it is
    displayed at, so dataset_convert cuts its box instead of refusing every one."""
    images, annotations = tmp_path / "images", tmp_path / "annotations"
    images.mkdir()
    annotations.mkdir()
    displayed = _phone_photo(images / "phone.jpg", 6)
    box = [v / 100 for v in _red_box(displayed)]
    (annotations / "fist.json").write_text(json.dumps({
        "phone": {"bboxes": [box], "labels": ["fist"], "user_id": "u1"}}))
    out = tmp_path / "original" / "hagrid"
    assert cli.main(["dataset_import", "--format", "hagrid", "--images", str(images),
                     "--annotations", str(annotations), "--output", str(out)]) == 0
    [annotation] = (out / "annotation").rglob("*.json")
    rect = next(r for r in json.loads(annotation.read_text())["completions"][0]["result"]
                if r["type"] == "rectanglelabels")
    assert (rect["original_width"], rect["original_height"]) == (48, 96)
    tree = TaoTree(tmp_path, dataset="hagrid")
    ds, exp = tree.specs()
    assert _convert(ds, exp, tmp_path / "data.json", extra=["--no_tfds"]) == 0
    doc = json.loads((tmp_path / "data.json").read_text())
    assert doc["stats"]["crops"] == 1 and doc["stats"]["rejected"] == 0
