"""The container engine the local container runs use: a Docker daemon when one answers, else
podman (Debian's), with the project's own containers.conf and its Docker-API service on a
socket of its own for the duration of a run.

Podman on a sandboxed machine needs settings a fresh install lacks (docker/containers.conf:
cgroupfs, runc, ulimits within the sandbox's hard limits); they are given through
``CONTAINERS_CONF`` for the podman commands this module runs, never written to /etc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = REPO / "docker" / "containers.conf"
SERVICE_START_S = 30.0


class EngineError(RuntimeError):
    """No container engine can run here; the message says why in one line."""


@dataclass(frozen=True)
class Engine:
    name: str                 # "docker" or "podman"
    env: dict[str, str]       # environment for the engine's CLI


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def find_engine() -> Engine:
    """A Docker daemon that answers, else podman; EngineError when neither can run."""
    if shutil.which("docker") and subprocess.run(
            ["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        return Engine("docker", dict(os.environ))
    if shutil.which("podman"):
        done = subprocess.run(["podman", "info"], capture_output=True, text=True,
                              env=podman_env(), timeout=60)
        if done.returncode == 0:
            return Engine("podman", podman_env())
        raise EngineError("podman is installed but cannot run here: "
                          + (done.stderr.strip().splitlines() or ["no message"])[-1])
    raise EngineError("no container engine: neither a Docker daemon answers nor podman is "
                      "installed (make containers installs Debian's podman)")


@contextmanager
def docker_api(engine: Engine) -> Iterator[str]:
    """A Docker-API endpoint for the ``docker`` Python client (KFP's DockerRunner): the
    daemon's own, or a podman service started here and stopped on exit. Yields the value
    for DOCKER_HOST."""
    if engine.name == "docker":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    with tempfile.TemporaryDirectory(prefix="gesturenet-podman-") as tmp:
        socket = Path(tmp) / "podman.sock"
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"], env=engine.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + SERVICE_START_S
            while not socket.exists():
                if service.poll() is not None or time.monotonic() > deadline:
                    raise EngineError("podman system service did not start: "
                                      + (service.stderr.read() or "").strip()[-300:])
                time.sleep(0.1)
            yield f"unix://{socket}"
        finally:
            service.terminate()
            try:
                service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()


@contextmanager
def docker_runner(image: str, key: str, read_only: list[str]) -> Iterator[object]:
    """KFP's DockerRunner for the project's image on this machine's engine, for the duration
    of a local run: every task with no network, the key in its environment (DockerRunner
    passes no host environment), the folders ``read_only`` bound read-only at their own paths
    (an importer's source lies outside the pipeline root), as the host's user (KFP binds the
    pipeline root from the host: its outputs must be writable and the host's), the image's
    ENTRYPOINT cleared (KFP's command is a full ``sh -c``), and failing tasks reported FAILED
    (``task_exit_status``)."""
    from kfp import local

    import docker
    from pipelines.task_exit_status import exit_status_checked

    engine = find_engine()
    with docker_api(engine) as host:
        previous = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = host  # read by docker.from_env() in KFP's handler
        try:
            client = docker.from_env()
            try:
                if not client.images.list(name=image):
                    raise EngineError(f"{image}: no such image on {engine.name} here; build "
                                      "it with `make images` (or set GESTURENET_IMAGE)")
            finally:
                client.close()
            mounts = [docker.types.Mount(target=p, source=p, type="bind", read_only=True)
                      for p in read_only]
            runner = local.DockerRunner(
                entrypoint=[""], network_mode="none", environment={"GESTURENET_KEY": key},
                user=f"{os.getuid()}:{os.getgid()}", mounts=mounts)
            with exit_status_checked():
                yield runner
        finally:
            if previous is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = previous
