"""gs:// for the subtasks: stage through the I/O seam into a local cache and write back.

TensorFlow (tf.data, TFDS, Keras files), OpenCV and the Beam local runner read and write local
paths, so a subtask given ``gs://`` paths works on local stand-ins: ``pull`` downloads a file
or a folder (a key prefix) into the cache before the work, ``output`` names the local folder or
file that ``push`` uploads afterwards. Transfers stream to and from disk (nothing is held whole
in memory) and run many objects at a time. Local paths pass through untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

from gesturenet_lib import io

PARALLEL_TRANSFERS = 16


class Stage:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="gesturenet-stage-")
        self.outputs: list[tuple[str, str]] = []

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def local(self, uri: str) -> str:
        """The cache path standing in for ``uri`` (the bucket and key as folders)."""
        if not io.is_cloud_uri(uri):
            return uri
        return os.path.join(self.root, str(uri)[len("gs://"):].rstrip("/"))

    def pull(self, uri: str | None) -> str | None:
        """Download ``uri`` (an object, or every object under the prefix) into the cache."""
        if uri is None or not io.is_cloud_uri(uri):
            return uri
        target = self.local(uri)
        if io.is_object(uri):
            io.download(uri, target)
            return target
        self.pull_many(list(io.list_files(uri)))
        return target  # a missing file is reported by the caller's own check, with its name

    def pull_many(self, uris: list[str]) -> None:
        """Download many objects, many at a time."""
        self._parallel(lambda uri: io.download(uri, self.local(uri)),
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
        self._parallel(lambda job: io.upload(*job), jobs)

    @staticmethod
    def _parallel(fn, items) -> None:
        with ThreadPoolExecutor(PARALLEL_TRANSFERS) as pool:
            for _ in pool.map(fn, items):
                pass


def any_cloud(*paths: str | None) -> bool:
    return any(p is not None and io.is_cloud_uri(p) for p in paths)
