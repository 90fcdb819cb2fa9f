"""The project's container image, one rule for the KFP components and the KServe manifests:
``$GESTURENET_IMAGE``, else ``<$GESTURENET_REGISTRY>/gesturenet:<package version>`` (what
`make images` tags)."""

from __future__ import annotations

import os

from gesturenet_lib import __version__

DEFAULT_REGISTRY = "ghcr.io/gesturenet-kfp"


def project_image() -> str:
    if os.environ.get("GESTURENET_IMAGE"):
        return os.environ["GESTURENET_IMAGE"]
    registry = os.environ.get("GESTURENET_REGISTRY", DEFAULT_REGISTRY)
    return f"{registry}/gesturenet:{__version__}"
