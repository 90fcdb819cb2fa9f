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
