"""Dead letters: hand boxes that do not reach data.json, each with its kind and reason.

Every step of the conversion emits its dead letters in its one output, wrapped as
``DeadLetter``; ``convert_pipeline.split_dead_letters`` then parts kept values from dead
letters and counts the dead letters by reason in Beam counters."""

from __future__ import annotations

from typing import NamedTuple

# The kinds: bad data, excluded by the spec, dropped by sampling.
REJECTED, FILTERED, SAMPLED_OUT = "rejected", "filtered", "sampled_out"
DROPPED = "dropped"  # an output that holds dead letters of any kind


class DeadLetter(NamedTuple):
    record: dict  # made by ``dropped``


def dropped(source: str, reason: str, kind: str, label: str | None = None,
            split: str | None = None) -> dict:
    """A dead-letter record: why a hand box is not in the output."""
    return {"source": source, "reason": reason, "kind": kind, "label": label, "split": split}


def reason_category(reason: str) -> str:
    """A reason without its specifics (a user id, a box, a file's error), for a counter name:
    "unreadable image (not a format ...)" -> "unreadable image"."""
    return reason.split(":")[0].split(" (")[0].split(" {")[0][:60]
