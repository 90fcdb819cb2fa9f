"""Video and numbered image sequences: MediaPipe's tracking loop. A hand found in one frame is
read in the next at the box its landmarks give (``rect_from_landmarks``); the palm detector
runs only when no hand is tracked, or every ``detect_every`` frames to notice a new one. Each
hand keeps a track id while it stays found; its class can be smoothed over the last frames.

One ``TrackedFrame`` per frame read (an undecodable frame is one with an error, and the run
goes on); ``results.jsonl`` gets one record per hand per frame, ``--previews`` the annotated
video."""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from gesturenet_lib import io
from gesturenet_lib.data.images import images_among
from gesturenet_lib.errors import RecordError, UserInputError
from gesturenet_lib.families.hand_landmarks.backend import landmark_reader
from gesturenet_lib.families.hand_landmarks.hand_finder import SAME_HAND_IOU, HandFinder
from gesturenet_lib.families.hand_landmarks.palm_detection import iou, rect_from_landmarks
from gesturenet_lib.inference.backends import Backend
from gesturenet_lib.inference.full_frame import (
    FRAME_LONG_SIDE,
    CropRule,
    FrameHand,
    classify_hands,
    hand_fields,
)
from gesturenet_lib.models.preprocessing import load_frame

log = logging.getLogger(__name__)
# A video file that fails this many reads in a row before its last frame has ended early.
MAX_FAILED_READS = 5
# While no hand is tracked, the palm detector sees every frame letterboxed (as MediaPipe's
# video mode does) and, on every WINDOWS_EVERY-th of those frames, also the square windows
# that find small hands (``HandFinder.find``): they cost twice the letterbox on a 4:3 or
# 16:9 frame, and a hand too small for the letterbox is found a few frames later instead.
WINDOWS_EVERY = 5


@dataclass(frozen=True)
class Tracking:
    """How hands are followed from frame to frame."""
    max_hands: int = 2        # hands tracked at once (MediaPipe's default num_hands)
    detect_every: int = 30    # the palm detector at least this often while hands are tracked
    smooth: int = 1           # the class: mean probabilities over a track's last N frames
    fps_of_sequences: float = 30.0   # an image sequence's frame rate (a video reports its own)

    def check(self) -> None:
        for name in ("max_hands", "detect_every", "smooth"):
            if getattr(self, name) < 1:
                raise UserInputError(f"--{name} {getattr(self, name)}: must be at least 1")
        if not self.fps_of_sequences > 0:
            raise UserInputError(f"--fps {self.fps_of_sequences}: must be above 0")


@dataclass(frozen=True)
class Frame:
    index: int
    time_s: float
    rgb: np.ndarray | None    # None: the frame could not be decoded
    error: str | None = None
    scale: float = 1.0        # the source's pixels per pixel of ``rgb`` (a reduced decode)


@dataclass(frozen=True)
class TrackedHand:
    track: int
    detected: bool            # found by the palm detector in this frame (else tracked)
    hand: FrameHand           # box, landmarks, class (smoothed when asked), in the source's pixels


@dataclass(frozen=True)
class TrackedFrame:
    index: int
    time_s: float
    hands: list[TrackedHand]
    error: str | None = None
    size: tuple[int, int] | None = None


@dataclass
class _Track:
    id: int
    palm_score: float
    history: deque = field(default_factory=deque)


# ----------------------------------------------------------------------------- frame sources

def video_frames(source: str, max_frames: int | None) -> tuple[Iterator[Frame], float]:
    """The frames of anything OpenCV's VideoCapture opens (a file, a camera index such as
    ``0``, an RTSP or HTTP URL), and its frame rate (30 when it reports none)."""
    import cv2

    target: str | int = int(source) if source.isdigit() else source
    if isinstance(target, str) and "://" not in target and not os.path.exists(target):
        raise UserInputError(f"--video {source}: file not found")
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        raise UserInputError(f"--video {source}: OpenCV cannot open it (not a video, or a "
                             "codec or device it lacks)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frames() -> Iterator[Frame]:
        index = failed = 0
        try:
            while max_frames is None or index < max_frames:
                ok, bgr = capture.read()
                if ok:
                    failed = 0
                    yield Frame(index, index / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                elif count and index < count and failed < MAX_FAILED_READS:
                    failed += 1   # a frame the decoder rejected, before the file's end
                    yield Frame(index, index / fps, None, "frame could not be decoded")
                else:
                    return
                index += 1
        finally:
            capture.release()
    return frames(), fps


def sequence_frames(image_dir: str, fps: float, max_frames: int | None) -> Iterator[Frame]:
    """The images under a folder as frames, in their numbers' order (frame2 before frame10)."""
    if not io.is_dir(image_dir):
        raise UserInputError(f"--image_dir {image_dir}: folder not found")
    paths = sorted(images_among(io.list_files(image_dir), image_dir, "--image_dir"),
                   key=_natural)
    if not paths:
        raise UserInputError(f"--image_dir {image_dir}: no image in it")
    for index, path in enumerate(paths[:max_frames]):
        try:
            rgb, size = load_frame(path, FRAME_LONG_SIDE)
        except RecordError as err:
            yield Frame(index, index / fps, None, f"{os.path.basename(path)}: {err}")
        else:
            yield Frame(index, index / fps, rgb, None, size[0] / rgb.shape[1])


def _natural(path: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


# ------------------------------------------------------------------------------ the tracker

class HandTracker:
    """MediaPipe's video-mode loop over frames, with our classifier on each hand."""

    def __init__(self, finder: HandFinder, backend: Backend, rule: CropRule,
                 tracking: Tracking):
        self.finder, self.backend, self.rule, self.tracking = finder, backend, rule, tracking
        self.reader = landmark_reader(backend)
        self.tracks: list[tuple[_Track, object]] = []   # (track, the rect to read next)
        self.next_id = 0
        self.since_detection = 0
        self.since_windows = WINDOWS_EVERY   # searches since the windows last ran

    def reset(self) -> None:
        """Forget every hand (after a frame that could not be decoded)."""
        self.tracks = []

    def step(self, frame: Frame) -> TrackedFrame:
        if frame.rgb is None:
            self.reset()
            return TrackedFrame(frame.index, frame.time_s, [], frame.error)
        rgb = frame.rgb
        h, w = rgb.shape[:2]
        followed = self.finder.hands_at(rgb, [rect for _, rect in self.tracks],
                                        [t.palm_score for t, _ in self.tracks])
        kept = [(track, hand) for (track, _), hand in zip(self.tracks, followed, strict=True)
                if hand is not None]
        hands = self.finder.distinct([hand for _, hand in kept], w, h)
        kept = [(track, hand) for track, hand in kept if any(hand is k for k in hands)]
        detected: list = []
        self.since_detection += 1
        if not kept or self.since_detection >= self.tracking.detect_every:
            self.since_detection = 0
            with_windows = bool(kept) or self.since_windows >= WINDOWS_EVERY
            self.since_windows = 1 if with_windows else self.since_windows + 1
            boxes = np.array([hand.box(w, h) for _, hand in kept], np.float64).reshape(-1, 4)
            for hand in self.finder.find(rgb, with_windows, zoom=False):
                if len(kept) + len(detected) >= self.tracking.max_hands:
                    break
                box = np.array(hand.box(w, h), np.float64)
                if len(boxes) and iou(box, boxes).max() > SAME_HAND_IOU:
                    continue   # a hand already tracked: the track keeps it
                detected.append((_Track(self._new_id(), hand.palm_score), hand))
                boxes = np.vstack([boxes, box[None]])
        pairs = kept + detected
        classified = classify_hands(rgb, [hand for _, hand in pairs], self.backend, self.rule,
                                    self.reader)
        out = []
        for (track, _), result in zip(pairs, classified, strict=True):
            smoothed = self._smoothed(track, result)
            out.append(TrackedHand(track.id, any(track is t for t, _ in detected),
                                   smoothed.scaled(frame.scale, _size(frame))))
        self.tracks = [(track, rect_from_landmarks(hand.landmarks)) for track, hand in pairs]
        return TrackedFrame(frame.index, frame.time_s, out, None, _size(frame))

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _smoothed(self, track: _Track, result: FrameHand) -> FrameHand:
        track.history.append(result.probabilities)
        while len(track.history) > self.tracking.smooth:
            track.history.popleft()
        if len(track.history) == 1:
            return result
        return FrameHand(result.hand, result.box, result.crop_box,
                         np.mean(np.stack(track.history), axis=0), result.hand_found)


def _size(frame: Frame) -> tuple[int, int]:
    h, w = frame.rgb.shape[:2]
    return round(w * frame.scale), round(h * frame.scale)


def track_frames(frames: Iterator[Frame], tracker: HandTracker, progress=None
                 ) -> Iterator[tuple[Frame, TrackedFrame]]:
    """Each frame with its tracked hands, in order."""
    for frame in frames:
        result = tracker.step(frame)
        if progress is not None:
            progress(frame.index + 1)
        yield frame, result


# ------------------------------------------------------------------------------ the outputs

def video_inference(exp, model_path: str, key: str | None, results_dir: str, *,
                    video: str | None = None, image_dir: str | None = None,
                    max_frames: int | None = None, previews: str | None = None,
                    rule: CropRule | None = None, tracking: Tracking = Tracking()):
    """`inference --video SOURCE` or `--image_dir DIR --sequence`: results.txt (``source
    frame track class_index class_name confidence x0 y0 x1 y1`` per hand, ``source frame -1
    no_hand``, ``source frame -1 error ...``) and results.jsonl (one record per hand per
    frame); ``previews``: ``<previews>/<source name>.mp4``, the annotated video."""
    from gesturenet_lib.inference.full_frame import hand_finder
    from gesturenet_lib.inference.infer import write_results
    from gesturenet_lib.inference.loading import load_checked_backend

    io.check_output(results_dir, "--results_dir", folder=True)
    tracking.check()
    if max_frames is not None and max_frames < 1:
        raise UserInputError(f"--max_frames {max_frames}: must be at least 1")
    if video:
        frames, fps = video_frames(video, max_frames)
        name = source_name(video)
    else:
        fps = tracking.fps_of_sequences
        frames = sequence_frames(image_dir, fps, max_frames)
        name = os.path.basename(os.path.normpath(image_dir))
    backend = load_checked_backend(model_path, key, exp.spec)
    names = sorted(backend.classes, key=backend.classes.get)
    tracker = HandTracker(hand_finder(), backend, rule or CropRule(), tracking)
    txt, jsonl, read, failed = [], [], 0, 0
    writer = _PreviewVideo(previews, name, fps) if previews else None
    try:
        for frame, result in track_frames(frames, tracker, _every_100_frames(name)):
            read += 1
            txt_lines, records = frame_lines(name, result, names)
            txt += txt_lines
            jsonl += records
            failed += result.error is not None
            if writer is not None and frame.rgb is not None:
                writer.add(frame, result, names)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    if writer is not None:
        writer.close()
    if read == 0:
        raise UserInputError(f"{video or image_dir}: no frame could be read")
    return write_results(results_dir, txt, jsonl, read - failed, failed)


def source_name(video: str) -> str:
    """What a video's outputs are named after: the file's name without its suffix, or
    ``camera<N>`` for a device index."""
    if video.isdigit():
        return f"camera{video}"
    stem = os.path.splitext(os.path.basename(video.rstrip("/")))[0]
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem) or "stream"


def frame_lines(name: str, result: TrackedFrame, names: list[str]) -> tuple[list[str], list]:
    """results.txt lines and results.jsonl records of one frame."""
    import json

    head = {"source": name, "frame": result.index, "time_s": round(result.time_s, 4)}
    if result.error:
        return ([f"{name} {result.index} -1 error {result.error.replace(' ', '_')}"],
                [json.dumps({**head, "error": result.error})])
    if not result.hands:
        return ([f"{name} {result.index} -1 no_hand"],
                [json.dumps({**head, "image_size": list(result.size), "hands": 0})])
    txt, records = [], []
    for tracked in result.hands:
        hand = tracked.hand
        txt.append(f"{name} {result.index} {tracked.track} {hand.index} {names[hand.index]} "
                   f"{hand.confidence:.6f} " + " ".join(str(v) for v in hand.box))
        records.append(json.dumps({
            **head, "track": tracked.track, "detected": tracked.detected,
            "image_size": list(result.size), "box": list(hand.box),
            **hand_fields(hand, names)}))
    return txt, records


class _PreviewVideo:
    """``<folder>/<name>.mp4`` (MPEG-4 Part 2, which every OpenCV build writes), each frame
    with its hands drawn; written beside and renamed when complete."""

    def __init__(self, folder: str, name: str, fps: float):
        io.makedirs(folder)
        self.path = os.path.join(folder, f"{name}.mp4")
        self.partial = os.path.join(folder, f".{name}.partial.mp4")
        self.fps, self.writer = fps, None

    def add(self, frame: Frame, result: TrackedFrame, names: list[str]) -> None:
        import cv2

        from gesturenet_lib.inference.previews import draw

        h, w = frame.rgb.shape[:2]
        hands = [t.hand.scaled(1 / frame.scale, (w, h)) for t in result.hands]
        picture = draw(frame.rgb, hands, names, [f"#{t.track}" for t in result.hands])
        if self.writer is None:
            self.size = (w, h)
            self.writer = cv2.VideoWriter(self.partial, cv2.VideoWriter_fourcc(*"mp4v"),
                                          self.fps, self.size)
            if not self.writer.isOpened():
                raise UserInputError(f"--previews {self.path}: OpenCV cannot write an MPEG-4 "
                                     "video there")
        if (w, h) != self.size:   # a sequence of mixed sizes: fitted to the first
            picture = cv2.resize(picture, self.size)
        self.writer.write(picture)

    def close(self) -> None:
        """The video complete: renamed to its own name."""
        if self.writer is not None:
            self.writer.release()
            os.replace(self.partial, self.path)

    def discard(self) -> None:
        """The run failed: the partial video is removed, never shown as complete."""
        if self.writer is not None:
            self.writer.release()
        if os.path.exists(self.partial):
            os.remove(self.partial)


def _every_100_frames(name: str):
    def report(done: int) -> None:
        if done % 100 == 0:
            log.info("inference --video %s: %d frames", name, done)
    return report
