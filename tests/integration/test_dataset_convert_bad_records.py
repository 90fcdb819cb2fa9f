"""Records that could crash, hang or escape the dataset are one rejected record
each, and the run goes on. Each test builds a small TAO tree with good hands
and the one bad record, runs dataset_convert through the CLI and reads the rejects file."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from gesturenet_lib import cli
from gesturenet_lib.data.annotations import label_studio_annotation
from gesturenet_lib.data.geometry import PercentBox
from tests.tao_tree import TaoTree

pytestmark = pytest.mark.slow


def _good_tree(tmp_path: Path) -> TaoTree:
    tree = TaoTree(tmp_path)
    for u in range(3):
        tree.hand(f"u{u}", "s1", "a.png", "fist")
    return tree


def _convert(tree: TaoTree, capsys, extra=()) -> tuple[int, dict, dict[str, str], str]:
    """(exit code, stats, {source: reason} of the rejects, stderr)."""
    ds, exp = tree.specs()
    out = tree.root / "out" / "data.json"
    code = cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                     "--output_filename", str(out), "--experiment_name", "v1", "--no_tfds",
                     *extra])
    err = capsys.readouterr().err
    if code != 0:
        return code, {}, {}, err
    rejects = [json.loads(line) for line in
               (tree.root / "out" / "data_rejects.jsonl").read_text().splitlines()]
    stats = json.loads(out.read_text())["stats"]
    assert stats["boxes_read"] == stats["crops"] + stats["rejected"] + stats["filtered"] + \
        stats["sampled_out"]
    return code, stats, {r["source"]: r["reason"] for r in rejects}, err


def _only_reject(tree, capsys, fragment: str, extra=()) -> str:
    code, stats, rejects, err = _convert(tree, capsys, extra)
    assert code == 0, err
    assert stats["crops"] == 3 and stats["rejected"] == 1, rejects
    (source, reason), = rejects.items()
    assert fragment in reason, reason
    return source


def test_a_symlinked_image_outside_the_dataset_is_not_read(tmp_path, capsys):
    secret = tmp_path.parent / f"{tmp_path.name}_secret.png"
    cv2.imwrite(str(secret), np.full((48, 64, 3), 200, np.uint8))
    tree = _good_tree(tmp_path)
    link = tree.dataset_dir / "u0" / "s2" / "link.png"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    tree.annotate("original/data/u0/s2/link.png", "fist")
    _only_reject(tree, capsys, "is a link that leads outside its dataset folder")
    assert not list((tmp_path / "extracted").rglob("link_*.png"))


def test_a_symlinked_annotation_outside_the_dataset_is_not_read(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}_ann.json"
    outside.write_text(json.dumps({"task_path": "original/data/u0/s1/a.png"}))
    (tree.dataset_dir / "annotation" / "zz.json").symlink_to(outside)
    _only_reject(tree, capsys, "annotation file is a link that leads outside")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (the pixel data are never reached)."""
    ihdr = b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    chunk = len(ihdr[4:]).to_bytes(4, "big") + ihdr + zlib.crc32(ihdr).to_bytes(4, "big")
    iend = (0).to_bytes(4, "big") + b"IEND" + zlib.crc32(b"IEND").to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + chunk + iend


@pytest.mark.parametrize("side, fragment", [
    (12000, "image of 12000x12000 pixels is over the pixel limit of 100,000,000"),
    (30000, "image is over the pixel limit (Image size (900000000 pixels)"),
])
def test_a_decompression_bomb_is_rejected_from_its_header(tmp_path, capsys, side, fragment):
    tree = _good_tree(tmp_path)
    bomb = tree.dataset_dir / "u0" / "s2" / "bomb.png"
    bomb.parent.mkdir(parents=True)
    bomb.write_bytes(_png_header_only(side, side))
    tree.annotate("original/data/u0/s2/bomb.png", "fist", width=side, height=side)
    _only_reject(tree, capsys, fragment)


def test_the_pixel_limit_is_a_flag(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    code, stats, rejects, _ = _convert(tree, capsys, ["--max_image_pixels", "1000"])
    assert code == 2  # every 64x48 image is over 1,000 pixels: nothing written
    code, stats, rejects, _ = _convert(tree, capsys, ["--max_image_pixels", "3072"])
    assert code == 0 and stats["crops"] == 3


def test_an_annotation_file_name_that_is_not_utf8(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    source = tree.annotate("original/data/u0/s1/a.png", "fist")
    os.rename(tmp_path / source, os.fsdecode(os.fsencode(tmp_path / source)[:-5] + b"\xff.json"))
    rejected = _only_reject(tree, capsys, "annotation file name is not UTF-8")
    assert rejected.endswith("\\xff.json")


def test_an_image_name_that_is_not_utf8(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    tree.annotate("original/data/u0/s1/bad\udcff.png", "fist")
    _only_reject(tree, capsys, "task_path is not valid UTF-8 text")


def test_json_nested_100000_deep(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    tree.annotate("", "", raw="[" * 100_000 + "]" * 100_000)
    _only_reject(tree, capsys, "nested too deeply")


@pytest.mark.parametrize("field, value", [("original_width", "1e999"),
                                          ("original_height", "1e400"), ("x", "NaN")])
def test_infinite_or_nan_numbers_in_an_annotation(tmp_path, capsys, field, value):
    tree = _good_tree(tmp_path)
    doc = label_studio_annotation("original/data/u0/s1/a.png", "fist",
                                  PercentBox(25, 25, 50, 50), 64, 48)
    rect = doc["completions"][0]["result"][1]
    target = rect["value"] if field == "x" else rect
    target[field] = "@@"
    raw = json.dumps(doc).replace('"@@"', value)
    tree.annotate("", "", raw=raw)
    _only_reject(tree, capsys, "malformed annotation")


def test_a_task_path_naming_a_folder(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    tree.annotate("original/data/u0/s1", "fist")
    _only_reject(tree, capsys, "is not a regular file")


def test_a_fifo_among_the_annotations_and_as_an_image(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    os.mkfifo(tree.dataset_dir / "annotation" / "pipe.json")
    code, stats, rejects, err = _convert(tree, capsys)  # must not hang
    assert code == 0, err
    assert list(rejects.values()) == ["annotation file is not a regular file (a folder, FIFO "
                                      "or device)"]
    os.unlink(tree.dataset_dir / "annotation" / "pipe.json")
    os.mkfifo(tree.dataset_dir / "u0" / "s1" / "fifo.png")
    tree.annotate("original/data/u0/s1/fifo.png", "fist")
    _only_reject(tree, capsys, "is not a regular file")


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def test_crop_workers_exit_when_their_parent_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    tree = TaoTree(tmp_path)
    big = np.tile(np.linspace(0, 255, 2400, dtype=np.uint8)[None, :, None], (1800, 1, 3))
    first = tree.dataset_dir / "u0" / "s1" / "f0000.png"
    first.parent.mkdir(parents=True)
    cv2.imwrite(str(first), big)
    for i in range(400):  # the same pixels under many names: slow to crop, cheap to make
        frame = tree.dataset_dir / f"u{i % 4}" / "s1" / f"f{i:04d}.png"
        frame.parent.mkdir(parents=True, exist_ok=True)
        if i:
            os.link(first, frame)
        tree.annotate(f"original/data/u{i % 4}/s1/f{i:04d}.png", "fist", width=2400,
                      height=1800)
    ds, exp = tree.specs()
    run = subprocess.Popen([sys.executable, "-m", "gesturenet_lib", "dataset_convert",
                            "--dataset_spec", ds, "--experiment_spec", exp, "--output_filename",
                            str(tmp_path / "d.json"), "--experiment_name", "v1", "--no_tfds"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while not workers and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _children(run.pid)
        assert workers, "the run ended before its crop workers could be seen"
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()
                 and " Z " not in Path(f"/proc/{w}/stat").read_text()]
        assert not alive, f"crop workers {alive} outlived their parent"
    finally:
        if run.poll() is None:
            run.kill()


def test_a_symlinked_user_folder_outside_the_dataset_is_not_read(tmp_path, capsys):
    outside = tmp_path.parent / f"{tmp_path.name}_elsewhere" / "s1"
    outside.mkdir(parents=True)
    cv2.imwrite(str(outside / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    tree = _good_tree(tmp_path)
    (tree.dataset_dir / "u9").symlink_to(outside.parent)
    tree.annotate("original/data/u9/s1/a.png", "fist")
    _only_reject(tree, capsys, "is a link that leads outside its dataset folder")


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    textured = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", textured)[1].tobytes()


def _lying_jpeg(how: str) -> bytes:
    """A JPEG whose header lies about its size, or whose middle is cut out (end kept):
    OpenCV decodes both without a word, 70 % flat grey or striped."""
    data = _jpeg()
    if how == "middle cut out":
        n = len(data)
        return data[:n // 2] + data[3 * n // 4:]  # inside the entropy-coded data
    sof = data.index(b"\xff\xc0")
    height, width = int.from_bytes(data[sof + 5:sof + 7], "big"), \
        int.from_bytes(data[sof + 7:sof + 9], "big")
    factor = 2 if how == "header claims twice its size" else 0.5
    size = int(height * factor).to_bytes(2, "big") + int(width * factor).to_bytes(2, "big")
    return data[:sof + 5] + size + data[sof + 9:]


@pytest.mark.parametrize("how", ["header claims twice its size", "header claims half its size",
                                 "middle cut out"])
def test_a_jpeg_that_lies_is_a_corrupt_image_not_a_grey_crop(tmp_path, capsys, how):
    data = _lying_jpeg(how)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    tree = _good_tree(tmp_path)
    lie = tree.dataset_dir / "u0" / "s2" / "lie.jpg"
    lie.parent.mkdir(parents=True)
    lie.write_bytes(data)
    scale = 2 if "twice" in how else 0.5 if "half" in how else 1
    tree.annotate("original/data/u0/s2/lie.jpg", "fist", width=int(64 * scale),
                  height=int(48 * scale))
    _only_reject(tree, capsys, "corrupt image (Corrupt JPEG data")
    assert not list((tmp_path / "extracted").rglob("lie_*.png"))


def test_a_format_that_is_not_accepted_is_named_before_any_decoding(tmp_path, capsys):
    """A Radiance HDR of 12000 x 12000 named .jpg: OpenCV would decode it (2.3 GB)."""
    import resource

    tree = _good_tree(tmp_path)
    hdr = tree.dataset_dir / "u0" / "s2" / "big.jpg"
    hdr.parent.mkdir(parents=True)
    hdr.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 12000 +X 12000\n"
                    + bytes(4 * 12000) * 20)
    tree.annotate("original/data/u0/s2/big.jpg", "fist", width=12000, height=12000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _only_reject(tree, capsys, "not an accepted format: Radiance HDR; accepted: JPEG, PNG, "
                               "BMP, WebP")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1_000_000  # KiB


def test_webp_is_accepted(tmp_path, capsys):
    tree = _good_tree(tmp_path)
    image = tree.dataset_dir / "u0" / "s2" / "w.webp"
    image.parent.mkdir(parents=True)
    image.write_bytes(cv2.imencode(".webp", np.full((48, 64, 3), 90, np.uint8))[1].tobytes())
    tree.annotate("original/data/u0/s2/w.webp", "fist")
    code, stats, rejects, err = _convert(tree, capsys)
    assert code == 0 and stats["crops"] == 4 and not rejects, (err, rejects)
