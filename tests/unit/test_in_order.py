"""Several images at once, answers in order: the helper whole-photo inference runs on."""

from __future__ import annotations

import threading
import time

from gesturenet_lib.inference.full_frame import in_order, photo_workers


def test_answers_come_in_the_items_order_and_few_run_ahead():
    started, lock = [], threading.Lock()

    def work(k: int) -> int:
        with lock:
            started.append(k)
        time.sleep(0.02 if k % 3 == 0 else 0.001)   # early items finish last
        return k * k

    answers = []
    for answer in in_order(work, range(20), workers=2):
        answers.append(answer)
        assert len(started) <= len(answers) + 4   # two per worker ahead of the reader
    assert answers == [k * k for k in range(20)]
    assert sorted(started) == list(range(20))


def test_one_worker_runs_in_the_callers_thread():
    threads = list(in_order(lambda _: threading.current_thread(), range(3), workers=1))
    assert threads == [threading.current_thread()] * 3


def test_an_error_of_the_work_reaches_the_reader():
    def work(k: int) -> int:
        if k == 2:
            raise ValueError("item 2")
        return k

    seen = []
    try:
        for answer in in_order(work, range(5), workers=2):
            seen.append(answer)
    except ValueError as err:
        assert str(err) == "item 2"
    else:
        raise AssertionError("the error was lost")
    assert seen == [0, 1]


def test_no_more_workers_than_images():
    assert photo_workers(1) == 1
    assert 1 <= photo_workers(10**6) <= 10**6
