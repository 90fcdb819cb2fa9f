"""Model encryption for `.tlt` and `.etlt` files: authenticated, versioned, documented.

File layout (all integers little-endian):

    magic    8 bytes   b"GNETENC\\x01"
    length   4 bytes   length of the header
    header   JSON      {"version": 1, "kind": "keras" | "onnx", "kdf": "scrypt",
                        "n": 32768, "r": 8, "p": 1, "salt": <base64, 16 bytes>,
                        "cipher": "AES-256-GCM", "nonce": <base64, 12 bytes>}
    payload  bytes     AES-256-GCM ciphertext + 16-byte tag of the model bytes

The key is derived from the user's key with scrypt and a random salt; the header is the
cipher's associated data, so changing any byte of the file (header included) is detected. A wrong
key and a modified file are the same error: the tag does not verify.
"""

from __future__ import annotations

import base64
import json
import os
import struct

MAGIC = b"GNETENC\x01"
VERSION = 1
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
# What a header may ask for before anything is derived: scrypt's memory is 128 * n * r bytes
# and its time grows with n * r * p, so a forged header could demand gigabytes and minutes.
MAX_HEADER_BYTES = 4096
SCRYPT_MAX_N, SCRYPT_MAX_R, SCRYPT_MAX_P = 2 ** 17, 16, 4
SCRYPT_MAX_MEMORY = 128 << 20
KINDS = ("keras", "onnx")


class DecryptionError(ValueError):
    """Wrong key or corrupted file."""


def looks_like_tao(blob: bytes) -> bool:
    """NVIDIA TAO's .etlt/.tlt (a closed cipher) start with a little-endian int32 input-name
    length and that name; ours start with MAGIC."""
    if len(blob) < 8 or blob.startswith(MAGIC):
        return False
    (length,) = struct.unpack("<i", blob[:4])
    name = blob[4:4 + length] if 0 < length < 256 else b""
    return bool(name) and all(32 < c < 127 for c in name)


def _derive(key: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(key.encode("utf-8"))


def encrypt(data: bytes, key: str, kind: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not key:
        raise ValueError("an empty key cannot encrypt a model")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = json.dumps({
        "version": VERSION, "kind": kind, "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R,
        "p": SCRYPT_P, "salt": base64.b64encode(salt).decode(), "cipher": "AES-256-GCM",
        "nonce": base64.b64encode(nonce).decode()}, sort_keys=True).encode()
    prefix = MAGIC + struct.pack("<I", len(header)) + header
    ciphertext = AESGCM(_derive(key, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(
        nonce, data, prefix)
    return prefix + ciphertext


def read_header(blob: bytes) -> dict:
    """The header, every field bounded before it is used (DecryptionError otherwise)."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise DecryptionError("not a GestureNet encrypted model")
    (length,) = struct.unpack("<I", blob[len(MAGIC):len(MAGIC) + 4])
    if length > MAX_HEADER_BYTES:
        raise DecryptionError("wrong key or corrupted file")
    try:
        header = json.loads(blob[len(MAGIC) + 4:len(MAGIC) + 4 + length])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DecryptionError("wrong key or corrupted file") from None
    if not isinstance(header, dict) or header.get("version") != VERSION \
            or not _bounded(header):
        raise DecryptionError("wrong key or corrupted file")
    return header


def _bounded(header: dict) -> bool:
    n, r, p = (header.get(k) for k in ("n", "r", "p"))
    if not all(type(v) is int for v in (n, r, p)):
        return False
    if not (2 <= n <= SCRYPT_MAX_N and n & (n - 1) == 0 and 1 <= r <= SCRYPT_MAX_R
            and 1 <= p <= SCRYPT_MAX_P and 128 * n * r <= SCRYPT_MAX_MEMORY):
        return False
    try:
        salt = base64.b64decode(header["salt"], validate=True)
        nonce = base64.b64decode(header["nonce"], validate=True)
    except (KeyError, TypeError, ValueError):
        return False
    return len(salt) == 16 and len(nonce) == 12 and header.get("kind") in KINDS


def decrypt(blob: bytes, key: str) -> tuple[bytes, str]:
    """(model bytes, kind) or DecryptionError."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = read_header(blob)
    length = struct.unpack("<I", blob[len(MAGIC):len(MAGIC) + 4])[0]
    prefix_len = len(MAGIC) + 4 + length
    try:
        salt = base64.b64decode(header["salt"])
        nonce = base64.b64decode(header["nonce"])
        derived = _derive(key, salt, header["n"], header["r"], header["p"])
        data = AESGCM(derived).decrypt(nonce, blob[prefix_len:], blob[:prefix_len])
    except (InvalidTag, KeyError, ValueError, TypeError):
        raise DecryptionError("wrong key or corrupted file") from None
    return data, header["kind"]
