"""The model key: from a flag, else from the environment (a Kubernetes Secret in a cluster)."""

from __future__ import annotations

import os

from gesturenet_lib.errors import UserInputError

KEY_ENV = "GESTURENET_KEY"
# The Kubernetes Secret (its entry "key") that the pipeline and the InferenceServices read.
KEY_SECRET = "gesturenet-key"


def resolve_key(flag_value: str | None, what: str = "-k/--key") -> str:
    """The key: the flag wins over the GESTURENET_KEY environment variable."""
    key = optional_key(flag_value, what)
    if key is None:
        raise UserInputError(f"{what}: no key given; pass {what} or set {KEY_ENV}")
    return key


def optional_key(flag_value: str | None, what: str = "-k/--key") -> str | None:
    """The key when there is one (plain .onnx and .keras models need none), checked here at
    the edge: a key that is not UTF-8 text is refused before any work, not after training."""
    if flag_value:
        return _checked(flag_value, what)
    from_env = os.environ.get(KEY_ENV, "")
    return _checked(from_env, KEY_ENV) if from_env else None


def _checked(key: str, source: str) -> str:
    # Python hands undecodable bytes of argv and the environment over as lone surrogates;
    # the key derivation encodes the key as UTF-8, so such a key could never be used.
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as err:
        raise UserInputError(f"{source}: the key is not UTF-8 text (byte "
                             f"{key[err.start].encode('utf-8', 'surrogateescape')!r} at "
                             f"position {err.start}); use a text key") from None
    return key
