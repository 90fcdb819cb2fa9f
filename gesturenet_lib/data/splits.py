"""Person-disjoint splits: which users are kpi, validation and train, and k folds.

Everything is keyed on the user id alone, so a user who appears in several datasets lands in
one split. Validation users and folds are drawn by sorting users on a stable hash of the user id
salted with the experiment name, so the same inputs give the same splits on any machine, and a
new experiment name gives a new draw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gesturenet_lib.errors import UserInputError

TRAIN, VALIDATION, KPI = "train_set", "validation_set", "kpi_set"
SPLITS = (TRAIN, VALIDATION, KPI)


def stable_hash(*parts: str) -> int:
    """A 64-bit hash that is the same on every machine and Python process."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class SplitPlan:
    """Which split every user belongs to; with folds, which fold every train/val user is in."""
    kpi_users: frozenset[str]
    validation_users: frozenset[str]
    train_users: frozenset[str]
    folds: tuple[frozenset[str], ...] = ()

    def split_of(self, user: str) -> str | None:
        if user in self.kpi_users:
            return KPI
        if user in self.validation_users:
            return VALIDATION
        if user in self.train_users:
            return TRAIN
        return None

    def fold_of(self, user: str) -> int | None:
        for i, fold in enumerate(self.folds):
            if user in fold:
                return i
        return None


def plan_splits(train_val_users: set[str], kpi_users: set[str], experiment_name: str,
                val_fraction: float, predefined_validation: list[str] | None,
                k_folds: int) -> SplitPlan:
    """Assign users. ``kpi_users`` win over everything; the other users of the train/val
    datasets are split into validation and train (or into ``k_folds`` folds, fold 0 being the
    validation set of the main split)."""
    pool = sorted(train_val_users - kpi_users,
                  key=lambda u: (stable_hash(experiment_name, u), u))
    if k_folds >= 2:
        if predefined_validation:
            raise UserInputError(
                f"--k_folds {k_folds}: folds are drawn from the users; it cannot be combined "
                "with uid_list.predefined_val_users = true")
        if len(pool) < k_folds:
            raise UserInputError(f"--k_folds {k_folds}: only {len(pool)} train/val users")
        folds = tuple(frozenset(pool[i::k_folds]) for i in range(k_folds))
        return SplitPlan(frozenset(kpi_users), folds[0], frozenset(pool) - folds[0], folds)
    if predefined_validation:
        validation = set(predefined_validation) & set(pool)
    else:
        count = int(round(val_fraction * len(pool)))
        if len(pool) >= 2:
            count = min(max(count, 1), len(pool) - 1)
        validation = set(pool[:count])
    return SplitPlan(frozenset(kpi_users), frozenset(validation),
                     frozenset(pool) - validation)


def fold_split(plan: SplitPlan, fold: int, user: str) -> str | None:
    """The split of ``user`` in fold ``fold``: that fold validates, the others train."""
    if user in plan.kpi_users:
        return KPI
    owner = plan.fold_of(user)
    if owner is None:
        return None
    return VALIDATION if owner == fold else TRAIN
