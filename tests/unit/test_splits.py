"""Person-disjoint splits and folds: invariants and determinism."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gesturenet_lib.data.splits import KPI, TRAIN, VALIDATION, fold_split, plan_splits
from gesturenet_lib.errors import UserInputError

USERS = {f"u{i:03d}" for i in range(40)}


def test_kpi_validation_and_train_are_disjoint_and_cover_everyone():
    plan = plan_splits(USERS, {"u000", "u001", "zzz"}, "v1", 0.25, None, 0)
    assert plan.kpi_users >= {"u000", "u001"}
    assert not (plan.validation_users & plan.train_users)
    assert not (plan.kpi_users & (plan.validation_users | plan.train_users))
    assert plan.validation_users | plan.train_users == USERS - {"u000", "u001"}
    assert len(plan.validation_users) == round(0.25 * 38)


def test_same_inputs_same_draw_new_experiment_new_draw():
    a = plan_splits(USERS, set(), "v1", 0.25, None, 0)
    assert a == plan_splits(set(sorted(USERS, reverse=True)), set(), "v1", 0.25, None, 0)
    assert a.validation_users != plan_splits(USERS, set(), "v2", 0.25, None, 0).validation_users


def test_predefined_validation_users():
    plan = plan_splits(USERS, set(), "v1", 0.25, ["u005", "u006", "unknown"], 0)
    assert plan.validation_users == {"u005", "u006"}
    assert plan.split_of("u005") == VALIDATION and plan.split_of("u007") == TRAIN


@given(st.sets(st.text(min_size=1, max_size=8), min_size=5, max_size=60),
       st.integers(2, 5), st.text(max_size=5))
def test_folds_cover_every_train_val_user_exactly_once(users, k, name):
    if len(users) < k:
        return
    plan = plan_splits(users, set(), name, 0.2, None, k)
    seen = [u for fold in plan.folds for u in fold]
    assert sorted(seen) == sorted(users)
    assert max(map(len, plan.folds)) - min(map(len, plan.folds)) <= 1
    for f in range(k):
        for u in users:
            assert fold_split(plan, f, u) == (VALIDATION if u in plan.folds[f] else TRAIN)


def test_fold_zero_is_the_main_split_and_kpi_stays_kpi():
    plan = plan_splits(USERS, {"u000"}, "v1", 0.2, None, 4)
    assert plan.validation_users == plan.folds[0]
    assert all(fold_split(plan, f, "u000") == KPI for f in range(4))


def test_folds_and_predefined_validation_conflict():
    with pytest.raises(UserInputError, match="--k_folds 3"):
        plan_splits(USERS, set(), "v1", 0.2, ["u001"], 3)


def test_more_folds_than_users():
    with pytest.raises(UserInputError, match="only 2 train/val users"):
        plan_splits({"a", "b"}, set(), "v1", 0.2, None, 3)
