"""The step learning-rate schedule and model encryption."""

from __future__ import annotations

import numpy as np
import pytest

from gesturenet_lib import crypto
from gesturenet_lib.training.schedule import StepSchedule, step_lr


def test_step_schedule_values():
    # 100 iterations, drop by half every 33 % of progress
    values = [step_lr(i, 100, 0.1, 33, 0.5) for i in (0, 32, 33, 65, 66, 98, 99)]
    assert values == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]


def test_keras_schedule_matches_the_formula():
    schedule = StepSchedule(300, 5e-5, 25, 0.1)
    for i in (0, 74, 75, 150, 224, 225, 299):
        assert float(schedule(i)) == pytest.approx(step_lr(i, 300, 5e-5, 25, 0.1), rel=1e-5)
    assert StepSchedule(**schedule.get_config()).get_config() == schedule.get_config()


def test_encryption_round_trip_wrong_key_and_tampering():
    data = np.random.default_rng(0).bytes(5000)
    blob = crypto.encrypt(data, "k3y", "keras")
    assert crypto.decrypt(blob, "k3y") == (data, "keras")
    with pytest.raises(crypto.DecryptionError, match="wrong key or corrupted file"):
        crypto.decrypt(blob, "other")
    for position in (len(blob) - 1, len(blob) // 2, 20):  # payload, payload, header
        tampered = bytearray(blob)
        tampered[position] ^= 1
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt(bytes(tampered), "k3y")
    with pytest.raises(crypto.DecryptionError, match="not a GestureNet"):
        crypto.decrypt(b"PK\x03\x04 a zip", "k3y")
    assert crypto.read_header(blob)["cipher"] == "AES-256-GCM"


def _forged(blob: bytes, **fields) -> bytes:
    import json
    import struct

    header = {**crypto.read_header(blob), **fields}
    text = json.dumps(header).encode()
    length = struct.unpack("<I", blob[8:12])[0]
    return crypto.MAGIC + struct.pack("<I", len(text)) + text + blob[12 + length:]


@pytest.mark.parametrize("fields", [{"n": -1}, {"n": 2 ** 30}, {"n": 2 ** 22}, {"n": 1000},
                                    {"p": 200}, {"r": 10 ** 6}, {"n": "32768"},
                                    {"salt": "!!"}, {"nonce": ""}, {"kind": "pickle"}])
def test_a_forged_header_is_refused_at_once_with_little_memory(fields):
    import resource
    import time

    blob = crypto.encrypt(b"model bytes", "k3y", "onnx")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(crypto.DecryptionError, match="wrong key or corrupted file"):
        crypto.decrypt(_forged(blob, **fields), "k3y")
    assert time.monotonic() - start < 5.0  # a forged n=2**22 took 23 s
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_a_header_length_beyond_the_file_is_refused():
    import struct

    blob = crypto.encrypt(b"model bytes", "k3y", "onnx")
    for length in (2 ** 32 - 1, crypto.MAX_HEADER_BYTES + 1):
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt(blob[:8] + struct.pack("<I", length) + blob[12:], "k3y")
