"""gs:// through the I/O seam, against a real GCS-compatible emulator on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import shutil
import socket
import subprocess
import time

import pytest

from gesturenet_lib import cli, io
from tests.conftest import REPO

EMULATOR = shutil.which("gcp-storage-emulator") or str(REPO / ".venv/bin/gcp-storage-emulator")


@pytest.fixture(scope="module")
def emulator():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([EMULATOR, "start", "--host", "127.0.0.1", "--port", str(port),
                             "--in-memory"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def bucket(emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    io._gcs_client.cache_clear()
    name = f"b{time.time_ns()}"
    io._gcs_client().create_bucket(name)
    yield f"gs://{name}"
    io._gcs_client.cache_clear()


def test_write_read_list_and_exists(bucket):
    io.write_text(f"{bucket}/data/a.json", "{}")
    io.write_bytes(f"{bucket}/data/sub/b.png", b"\x89PNG")
    io.write_bytes(f"{bucket}/other.txt", b"x")
    assert io.read_text(f"{bucket}/data/a.json") == "{}"
    assert io.exists(f"{bucket}/data/a.json") and io.exists(f"{bucket}/data")
    assert io.is_dir(f"{bucket}/data") and not io.is_dir(f"{bucket}/data/a.json")
    assert not io.exists(f"{bucket}/nothing")
    assert list(io.list_files(f"{bucket}/data")) == [f"{bucket}/data/a.json",
                                                     f"{bucket}/data/sub/b.png"]
    assert io.list_dir(bucket) == ["data", "other.txt"]
    assert io.list_dir(f"{bucket}/data") == ["a.json", "sub"]
    with pytest.raises(FileNotFoundError, match="no such object"):
        io.read_bytes(f"{bucket}/missing.bin")


def test_specs_validate_from_gs(bucket, train_spec_dict, capsys):
    io.write_text(f"{bucket}/specs/train_spec.json", json.dumps(train_spec_dict))
    assert cli.main(["validate", "-e", f"{bucket}/specs/train_spec.json"]) == 0
    bad = copy.deepcopy(train_spec_dict)
    bad["model"]["num_layers"] = 19
    io.write_text(f"{bucket}/specs/bad.json", json.dumps(bad))
    assert cli.main(["validate", "-e", f"{bucket}/specs/bad.json"]) == 2
    assert f"{bucket}/specs/bad.json: model.num_layers = 19" in capsys.readouterr().err
    assert cli.main(["validate", "-e", f"{bucket}/specs/none.json"]) == 2
    assert f"{bucket}/specs/none.json: file not found" in capsys.readouterr().err
