"""The crop step of dataset_convert: one PNG per hand box, cut at native resolution by
``cropping.crop_chunk``, here or in a pool of worker processes."""

from __future__ import annotations

import collections
import logging
import os
import threading
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from gesturenet_lib import io, local_files
from gesturenet_lib.data.convert_pipeline import NAMESPACE, split_dead_letters
from gesturenet_lib.data.cropping import ChunkResult, CropSettings, crop_chunk
from gesturenet_lib.data.dead_letters import REJECTED, DeadLetter
from gesturenet_lib.data.images import DecodeBuffer

log = logging.getLogger(__name__)


def exit_with_parent(parent_pid: int, period_s: float = 1.0) -> None:
    """In a crop worker: end this process once its parent is gone (a ``kill -9`` of the run
    would otherwise leave idle workers behind for minutes). A watch thread, not Linux's
    PR_SET_PDEATHSIG: that signal follows the *thread* that forked the worker, and Beam may
    retire that thread while the pool is still in use."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(period_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class CropImageFn(beam.DoFn):
    """Image groups ``(image path, [(split, record), ...])`` -> packed batches of the
    entries' rows (see ``cropping``); bad images and boxes go to ``rejected``.

    With ``processes > 1`` the groups are cropped in chunks of CHUNK images by a pool of
    worker processes: decoding and encoding are CPU-bound, and processes (unlike threads,
    measured) scale with the cores. Each image is decoded once for all its boxes; only paths
    and small records cross processes. Work is submitted as it arrives and results are
    emitted as they complete (the rest at the end of the bundle), so the pool never waits for
    the runner between chunks.
    """

    IN_FLIGHT_PER_PROCESS = 8    # chunks in flight per process: bounds memory, keeps all busy
    # Images per task: fewer, larger messages cost the runner and the workers less (measured
    # at 2,320 images, 3 pairs of runs: 16 was 4-6 % faster than 8, and 32 no faster than 16,
    # its last tasks ending less evenly across the workers).
    CHUNK = 16

    def __init__(self, settings: CropSettings, processes: int):
        self.settings = settings
        self.processes = processes
        self.done = 0

    def setup(self):
        self.crops = Metrics.counter(NAMESPACE, "crops")
        self.output_dir = io.join(self.settings.mount_dir, self.settings.post_data_dir)
        self.flush = local_files.BackgroundFlush(self.output_dir)
        self.buffer = DecodeBuffer()  # for the groups cropped here (no pool), one by one
        self.pool = None
        self.pending: collections.deque = collections.deque()
        import multiprocessing

        if self.processes > 1 and "fork" in multiprocessing.get_all_start_methods():
            from concurrent.futures import ProcessPoolExecutor

            # "fork", not "spawn": spawn re-imports the caller's __main__ in every child, which
            # breaks any script that calls dataset_convert() without a __main__ guard. The
            # children run only cropping (file I/O and OpenCV, which the parent never used),
            # so no lock held by a runner thread is ever needed in them.
            self.pool = ProcessPoolExecutor(self.processes,
                                            mp_context=multiprocessing.get_context("fork"),
                                            initializer=exit_with_parent,
                                            initargs=(os.getpid(),))

    def teardown(self):
        self.flush.stop()
        if self.pool is not None:  # idle by now; the children exit on their own
            self.pool.shutdown(wait=False)

    def start_bundle(self):
        self.chunk: list[tuple[str, list]] = []  # image groups not yet cropped

    def process(self, group):
        path, items = group
        if self.pool is None:
            self.flush.start()
            # Cropped at once, nothing held for finish_bundle: Beam's DaskRunner drops what a
            # DoFn emits there. Chunks and the pool are for the in-process runner.
            yield from self._emit(crop_chunk(self.settings, [(path, list(items))], self.buffer),
                                  False)
            return
        self.chunk.append((path, list(items)))
        if len(self.chunk) >= self.CHUNK:
            chunk, self.chunk = self.chunk, []
            yield from self._crop(chunk)

    def finish_bundle(self):
        if self.chunk:
            chunk, self.chunk = self.chunk, []
            yield from self._crop(chunk, windowed=True)
        while self.pending:
            yield from self._emit(self.pending.popleft().result(), windowed=True)
        log.info("dataset_convert: %d images cropped by this worker", self.done)
        self.flush.stop()
        if self.done:
            # The bundle's crops reach the disk before its entries leave the step (a runner
            # commits a bundle's output after finish_bundle): data.json, written later,
            # never names a crop a crash could lose. One syncfs of the output file system.
            local_files.sync_file_system(self.output_dir)

    def _crop(self, chunk: list, windowed: bool = False):
        """Submit one chunk to the pool and emit what has completed."""
        self.pending.append(self.pool.submit(crop_chunk, self.settings, chunk))
        # The crops reach the disk while the bundle runs, and the sync at its end finds little
        # left. Started after the first task, which forks the pool's processes.
        self.flush.start()
        limit = self.IN_FLIGHT_PER_PROCESS * self.processes
        while self.pending and (len(self.pending) > limit or self.pending[0].done()):
            yield from self._emit(self.pending.popleft().result(), windowed)

    def _emit(self, result: ChunkResult, windowed: bool):
        def value(payload):
            return GlobalWindows.windowed_value(payload) if windowed else payload

        if result.entries is not None:
            self.crops.inc(result.crops)
            yield value(result.entries)
        for record in result.rejected:
            yield value(DeadLetter(record))
        before, self.done = self.done, self.done + result.images
        if self.done // 256 > before // 256:
            log.info("dataset_convert: %d images cropped by this worker", self.done)


class CropHands(beam.PTransform):
    """Cut one crop per hand box at native resolution, from image groups (each image is
    decoded once for all of its boxes); bad images go to ``rejected``.

    ``entries`` holds the entries' rows (``dataset_file.entry_row``) in packed, compressed
    batches (``cropping.unpack`` gives the rows): they are pickled once where they are made
    and unpickled once by the write step, instead of at every step between (measured: 0.05 s
    of the runner's CPU at 2,725 crops).
    """

    def __init__(self, settings: CropSettings, processes: int = 1):
        super().__init__()
        self.settings = settings
        self.processes = processes

    def expand(self, groups):
        crop = CropImageFn(self.settings, self.processes)
        return split_dead_letters(groups | "Crop" >> beam.ParDo(crop), "entries", REJECTED)
