"""The model key: from a flag, else from the environment (a Kubernetes Secret in a cluster)."""

from __future__ import annotations

import os

from gesturenet_lib.errors import UserInputError

KEY_ENV = "GESTURENET_KEY"
# The Kubernetes Secret (its entry "key") that the pipeline and the InferenceServices read.
KEY_SECRET = "gesturenet-key"


def resolve_key(flag_value: str | None, what: str = "-k/--key") -> str:
    """The key: the flag wins over the GESTURENET_KEY environment variable."""
    if flag_value:
        return flag_value
    from_env = os.environ.get(KEY_ENV, "")
    if from_env:
        return from_env
    raise UserInputError(f"{what}: no key given; pass {what} or set {KEY_ENV}")


def optional_key(flag_value: str | None) -> str | None:
    """The key when there is one (plain .onnx and .keras models need none)."""
    return flag_value or os.environ.get(KEY_ENV) or None
