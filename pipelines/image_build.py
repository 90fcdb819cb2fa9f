"""Build the project's container images with whichever engine runs here (what `make images`
does): `python -m pipelines.image_build [--gpu] [--force]`.

- The CPU image (docker/Dockerfile) is tagged ``project_image()`` (GESTURENET_IMAGE, else
  <registry>/gesturenet:<package version>) and labelled with a hash of its inputs (the
  Dockerfile, the lock, pyproject.toml, the package's files): an image already carrying the
  same hash is not rebuilt.
- Its base, Debian bookworm, is pulled; where no registry answers it is made from Debian's
  archive (mmdebstrap, minbase, with Debian's python3 and venv) and imported under the same
  name, so the Dockerfile is the same everywhere.
- A TLS-intercepting proxy: the host's CA bundle (GESTURENET_CA_BUNDLE, else Debian's
  /etc/ssl/certs/ca-certificates.crt) is given to the build as the secret ``ca_bundle``, for
  pip only; it never lands in the image.
- The GPU image (docker/Dockerfile.gpu) only with --gpu and where its base can be pulled; if
  it cannot, one line says so and the CPU image still counts.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from gesturenet_lib.container_image import project_image
from pipelines.container_engine import REPO, Engine, EngineError, find_engine

BASE = "docker.io/library/debian:bookworm-slim"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
INPUTS_LABEL = "org.gesturenet.inputs"
PULL_TIMEOUT_S = 120


def inputs_hash() -> str:
    """SHA-256 over what the CPU image is built from."""
    digest = hashlib.sha256()
    files = [REPO / "docker" / "Dockerfile", REPO / "requirements.lock",
             REPO / "pyproject.toml", REPO / "README.md",
             *sorted(p for p in (REPO / "gesturenet_lib").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)]
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _run(engine: Engine, *args: str, timeout: float | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([engine.name, *args], env=engine.env, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise EngineError(f"{engine.name} {args[0]}: "
                          + ((done.stderr or done.stdout).strip().splitlines() or ["failed"])[-1])
    return done


def image_label(engine: Engine, image: str) -> str | None:
    done = _run(engine, "image", "inspect", "--format",
                "{{ index .Config.Labels \"" + INPUTS_LABEL + "\" }}", image, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _pulled(engine: Engine, image: str) -> bool:
    try:
        return _run(engine, "pull", image, timeout=PULL_TIMEOUT_S, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_base(engine: Engine) -> str:
    """The Debian base: there, pulled, or made from Debian's archive. Says which."""
    if _run(engine, "image", "inspect", BASE, check=False).returncode == 0:
        return "present"
    if _pulled(engine, BASE):
        return "pulled"
    with tempfile.TemporaryDirectory(prefix="gesturenet-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        done = subprocess.run(["mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}",
                               "bookworm", str(tar), DEBIAN_MIRROR], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise EngineError(f"{BASE} cannot be pulled, and mmdebstrap failed: "
                              + (done.stderr.strip().splitlines() or ["no message"])[-1])
        _run(engine, "import", str(tar), BASE)
    return "made from Debian's archive (mmdebstrap)"


def build_cpu(engine: Engine, tag: str, force: bool = False) -> str:
    """Build the CPU image unless ``tag`` already has these inputs; says what was done."""
    wanted = inputs_hash()
    if not force and image_label(engine, tag) == wanted:
        return f"{tag}: up to date (inputs {wanted[:12]})"
    base = ensure_base(engine)
    superseded = _image_id(engine, tag)
    args = ["build", "-f", str(REPO / "docker" / "Dockerfile"), "-t", tag,
            "--label", f"{INPUTS_LABEL}={wanted}"]
    bundle = os.environ.get("GESTURENET_CA_BUNDLE", HOST_CA_BUNDLE)
    if bundle and Path(bundle).is_file():
        args += ["--secret", f"id=ca_bundle,src={bundle}"]
    env = {**engine.env, "DOCKER_BUILDKIT": "1"}  # build secrets need BuildKit on Docker
    done = subprocess.run([engine.name, *args, str(REPO)], env=env, text=True)
    if done.returncode != 0:
        raise EngineError(f"{engine.name} build of {tag} failed (exit {done.returncode}); "
                          "its output is above")
    if superseded and superseded != _image_id(engine, tag):
        # the image this tag named before (3 GB): nothing else refers to it
        _run(engine, "rmi", superseded, check=False)
    return f"{tag}: built (base {base}, inputs {wanted[:12]})"


def _image_id(engine: Engine, image: str) -> str | None:
    done = _run(engine, "image", "inspect", "--format", "{{.Id}}", image, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def build_gpu(engine: Engine, tag: str) -> str:
    dockerfile = REPO / "docker" / "Dockerfile.gpu"
    base = re.search(r"^FROM (\S+)", dockerfile.read_text(), re.M).group(1)
    if _run(engine, "image", "inspect", base, check=False).returncode != 0 and \
            not _pulled(engine, base):
        return f"{tag}-gpu: not built: its base {base} cannot be pulled here"
    done = subprocess.run([engine.name, "build", "-f", str(dockerfile), "-t", f"{tag}-gpu",
                           str(REPO)], env=engine.env, text=True)
    if done.returncode != 0:
        raise EngineError(f"{engine.name} build of {tag}-gpu failed (exit {done.returncode})")
    return f"{tag}-gpu: built"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="also the GPU image")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    tag = project_image()
    try:
        engine = find_engine()
        print(f"engine: {engine.name}")
        print(build_cpu(engine, tag, args.force))
        if args.gpu:
            print(build_gpu(engine, tag))
    except (EngineError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
