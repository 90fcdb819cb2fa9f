"""Data-parallel training across workers, configured from TF_CONFIG (what Kubeflow's training
operator sets for a TFJob): ``{"cluster": {"chief": [...], "worker": [...]},
"task": {"type": ..., "index": ...}}``. The chief is the ``chief`` task, or worker 0 when there
is none; only the chief writes the model and the metrics."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from gesturenet_lib.errors import UserInputError


@dataclass(frozen=True)
class Cluster:
    workers: int
    index: int          # this task's rank among all workers (chief first)
    is_chief: bool

    def strategy(self):
        import tensorflow as tf

        if self.workers > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
        return tf.distribute.get_strategy()  # the default: this process only


def cluster_from_env(num_workers: int) -> Cluster:
    """The cluster this process belongs to; checks it against ``trainer.num_workers``."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        if num_workers > 1:
            raise UserInputError(
                f"trainer.num_workers = {num_workers}: multi-worker training needs TF_CONFIG "
                "(set by Kubeflow's training operator, or by hand: cluster and task)")
        return Cluster(1, 0, True)
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise UserInputError(f"TF_CONFIG = {raw[:80]!r}: expected {{\"cluster\": {{...}}, "
                             "\"task\": {\"type\": ..., \"index\": ...}}") from None
    total = len(chiefs) + len(workers)
    if total != num_workers:
        raise UserInputError(f"trainer.num_workers = {num_workers}: TF_CONFIG lists {total} "
                             "workers")
    rank = index if kind == "chief" else len(chiefs) + index
    is_chief = kind == "chief" or (not chiefs and kind == "worker" and index == 0)
    return Cluster(total, rank, is_chief)
