"""Class resampling of the training set (`sampling` in dataset_experiment_config).

The rule of ``sampling_mode: "average"``, applied only when ``use_class_weights`` is true and only
to the training set (validation and kpi sets are never resampled):

1. ``N`` is the number of training records whose class is named in ``class_weights``; classes
   not named are left exactly as they are.
2. Each named class ``c`` gets the target ``t_c = round(N * w_c / sum(w))``: the total stays
   about ``N`` and the class proportions follow the weights.
3. The records of ``c`` are ordered by a stable hash of (experiment name, annotation source).
   When ``t_c <= n_c`` the first ``t_c`` are kept (the others are "sampled out"); when
   ``t_c > n_c`` every record is repeated ``t_c // n_c`` times and the first ``t_c % n_c`` once
   more (duplicates reference the same crop).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from gesturenet_lib.data.splits import stable_hash


@dataclass(frozen=True)
class BalanceResult:
    records: list[dict]        # the resampled training records, in a deterministic order
    sampled_out: list[dict]    # records dropped (each once)
    duplicates: int            # extra copies added by oversampling


def class_targets(counts: dict[str, int], weights: dict[str, float]) -> dict[str, int]:
    """Target record count per named class (rule steps 1-2)."""
    named = {c: w for c, w in weights.items()}
    total_weight = sum(named.values())
    n = sum(counts.get(c, 0) for c in named)
    if total_weight <= 0:
        return {}
    return {c: int(round(n * w / total_weight)) for c, w in named.items()}


def balance_classes(records: list[dict], weights: dict[str, float], salt: str) -> BalanceResult:
    """Resample ``records`` (each with ``label`` and ``source``) by the "average" rule."""
    by_class: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_class[record["label"]].append(record)
    targets = class_targets({c: len(rs) for c, rs in by_class.items()}, weights)
    kept: list[dict] = []
    dropped: list[dict] = []
    duplicates = 0
    for label in sorted(by_class):
        group = sorted(by_class[label], key=lambda r: (stable_hash(salt, r["source"]), r["source"]))
        if label not in targets:
            kept.extend(group)
            continue
        target, n = targets[label], len(group)
        if target <= n:
            kept.extend(group[:target])
            dropped.extend(group[target:])
        else:
            repeats, extra = divmod(target, n)
            kept.extend(group * repeats + group[:extra])
            duplicates += target - n
    kept.sort(key=lambda r: (r["full_image_path"], r["source"]))
    return BalanceResult(kept, dropped, duplicates)
