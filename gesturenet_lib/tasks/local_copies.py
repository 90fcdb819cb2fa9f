"""gs:// for every task, in one place: local copies of the inputs, local folders for the outputs.

TensorFlow (tf.data, TFDS, Keras files), OpenCV and Beam's local runner read and write local
paths, so a task given ``gs://`` paths works on local stand-ins: ``pull`` downloads a file or a
folder (a key prefix) into a cache before the work, ``output`` names the local folder or file
that ``push`` uploads afterwards. Transfers stream to and from disk (nothing is held whole in
memory) and run many objects at a time. Local paths pass through untouched.

``run_staged`` is the one wrapper around a task's work: each task declares its request's paths
and how the request looks on local copies; the wrapper pulls, runs, pushes (also after a
failure: train's checkpoints let a later run resume from gs://) and names the result's files by
their gs:// URIs.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gesturenet_lib import io

PARALLEL_TRANSFERS = 16

Request = TypeVar("Request")
Result = TypeVar("Result")


class LocalCopies:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="gesturenet-stage-")
        self.outputs: list[tuple[str, str]] = []

    def __enter__(self) -> LocalCopies:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def local(self, uri: str | None) -> str | None:
        """The cache path standing in for ``uri`` (the bucket and key as folders)."""
        if uri is None or not io.is_cloud_uri(uri):
            return uri
        return os.path.join(self.root, str(uri)[len("gs://"):].rstrip("/"))

    def remote(self, path: str) -> str:
        """The gs:// URI a cache path stands in for; any other path unchanged."""
        prefix = self.root + os.sep
        return "gs://" + path[len(prefix):] if path.startswith(prefix) else path

    def pull(self, uri: str | None) -> str | None:
        """Download ``uri`` (an object, or every object under the prefix) into the cache."""
        if uri is None or not io.is_cloud_uri(uri):
            return uri
        target = self.local(uri)
        if io.is_object(uri):
            io.download(uri, target)
            return target
        self.pull_many(list(io.list_files(uri)))
        return target  # a missing file is reported by the task's own check, with its name

    def pull_if_exists(self, uri: str | None) -> str | None:
        """``pull`` for an input that is reused when it exists (a calibration cache)."""
        if uri is not None and io.is_cloud_uri(uri) and io.exists(uri):
            return self.pull(uri)
        return self.local(uri)

    def pull_many(self, uris: list[str]) -> None:
        """Download many objects, many at a time."""
        self.in_parallel(lambda uri: io.download(uri, self.local(uri)),
                       [u for u in uris if io.is_cloud_uri(u)])

    def output(self, uri: str | None) -> str | None:
        """A local folder or file whose content ``push`` uploads to ``uri``."""
        if uri is None or not io.is_cloud_uri(uri):
            return uri
        self.outputs.append((self.local(uri), str(uri).rstrip("/")))
        return self.local(uri)

    def push(self) -> None:
        """Upload every output (files under a folder keep their relative paths)."""
        jobs = []
        for local, uri in self.outputs:
            if os.path.isfile(local):
                jobs.append((local, uri))
            elif os.path.isdir(local):
                for path in io.list_files(local):
                    jobs.append((path, f"{uri}/{os.path.relpath(path, local)}"))
        self.in_parallel(lambda job: io.upload(*job), jobs)

    def remote_result(self, result: Result) -> Result:
        """``result`` with every cache path in its fields (strings, lists and dicts of them)
        named by its gs:// URI."""
        def named(value):
            if isinstance(value, str):
                return self.remote(value)
            if isinstance(value, list):
                return [named(v) for v in value]
            if isinstance(value, dict):
                return {k: named(v) for k, v in value.items()}
            return value

        changes = {f.name: named(getattr(result, f.name)) for f in dataclasses.fields(result)
                   if isinstance(getattr(result, f.name), str | list | dict)}
        return dataclasses.replace(result, **changes)

    @staticmethod
    def in_parallel(fn, items) -> None:
        with ThreadPoolExecutor(PARALLEL_TRANSFERS) as pool:
            for _ in pool.map(fn, items):
                pass


def any_cloud(paths: Iterable[str | None]) -> bool:
    return any(p is not None and io.is_cloud_uri(p) for p in paths)


def run_staged(request: Request, paths: Iterable[str | None],
               on_local: Callable[[LocalCopies], Request],
               work: Callable[[Request], Result]) -> Result:
    """``work(request)``; when any of the request's ``paths`` is on gs://, on the request
    ``on_local`` makes (its inputs pulled, its outputs local folders), then the outputs pushed
    and the result's paths named by their URIs."""
    if not any_cloud(paths):
        return work(request)
    with LocalCopies() as copies:
        local = on_local(copies)
        try:
            result = work(local)
        finally:
            copies.push()
        return copies.remote_result(result)
