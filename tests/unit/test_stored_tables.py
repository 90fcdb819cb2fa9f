"""The split plan and the users travel to the pipeline's steps as a file reference."""

from __future__ import annotations

import pickle

import pytest

from gesturenet_lib.data.splits import KPI, TRAIN, VALIDATION, fold_split, plan_splits
from gesturenet_lib.data.stored_tables import StoredPlan, StoredUsers, write_tables
from gesturenet_lib.errors import UserInputError


def _tables(tmp_path, k_folds=0):
    users = {f"user-{i:04d}": {"site": "lab" if i % 2 else "home"} for i in range(300)}
    plan = plan_splits(set(users) - {"user-0000"}, {"user-0000"}, "v1", 0.2, None, k_folds)
    path = str(tmp_path / "split_plan.json")
    write_tables(path, plan, {"data": users, "other": {}})
    return path, plan, users


def test_a_stored_plan_answers_like_the_plan_it_was_written_from(tmp_path):
    path, plan, users = _tables(tmp_path, k_folds=3)
    stored = pickle.loads(pickle.dumps(StoredPlan(path)))
    for user in [*users, "stranger"]:
        assert stored.split_of(user) == plan.split_of(user)
        assert [fold_split(stored, f, user) for f in range(3)] == \
            [fold_split(plan, f, user) for f in range(3)]
    assert {stored.split_of(u) for u in users} == {KPI, TRAIN, VALIDATION}


def test_stored_users_are_a_mapping_of_the_written_users(tmp_path):
    path, _, users = _tables(tmp_path)
    stored = pickle.loads(pickle.dumps(StoredUsers(path, "data")))
    assert dict(stored) == users and len(stored) == 300
    assert "user-0003" in stored and stored.get("nobody", {}) == {}
    assert not StoredUsers(path, "other")  # a dataset without a set file: no user list


def test_what_is_pickled_is_the_path_not_the_table(tmp_path):
    path, _, _ = _tables(tmp_path)
    plan, users = StoredPlan(path), StoredUsers(path, "data")
    plan.split_of("user-0001"), len(users)  # loaded in this process...
    for stored in (plan, users):
        blob = pickle.dumps(stored)
        assert len(blob) < 400 and b"user-0001" not in blob  # ...but never shipped


def test_a_missing_tables_file_is_a_one_line_error_naming_it(tmp_path):
    plan = pickle.loads(pickle.dumps(StoredPlan(str(tmp_path / "gone.json"))))
    with pytest.raises(UserInputError, match="gone.json: split plan file not found"):
        plan.split_of("u1")
