"""What the standard pool's workers can do with multiprocessing's objects, multilane's can:
use the parent's managers (they share its authkey), and receive a Queue, Lock or Event in
``initargs``. And a call that cannot be unpickled in its worker fails alone."""

from __future__ import annotations

import multiprocessing
import os

import _conformance_tasks as crossing
import _tasks
import pytest
from conftest import TIMEOUT

import multilane


def test_an_argument_that_fails_to_unpickle_in_the_worker_fails_its_future_alone(no_leaks):
    with multilane.ProcessPoolExecutor(1) as ex:
        future = ex.submit(_tasks.identity, crossing.FailsToUnpickle())
        with pytest.raises(multilane.UnpicklingFailed,
                           match="^the worker could not unpickle the call: ValueError: "
                                 "FailsToUnpickle refuses to be unpickled$") as info:
            future.result(TIMEOUT)
        assert isinstance(info.value, multilane.BrokenProcessPool)  # as the standard pool
        assert isinstance(info.value.__cause__, ValueError)
        assert ex.submit(_tasks.identity, 5).result(TIMEOUT) == 5  # but the pool goes on


def test_workers_reach_the_parents_manager():
    with multiprocessing.Manager() as manager, multilane.ProcessPoolExecutor(1) as ex:
        shared = manager.dict()
        assert ex.submit(_tasks.set_item, shared, "k", 7).result(TIMEOUT) == "k"
        assert shared["k"] == 7


def test_a_queue_in_initargs_reaches_every_worker():
    # Workers are spawned, never forked: a lock or queue made for forked children (the
    # default context on Linux before 3.14) cannot reach them, as with mp_context=spawn.
    queue = multiprocessing.get_context("spawn").Queue()
    try:
        with multilane.ProcessPoolExecutor(2, initializer=_tasks.put_pid,
                                           initargs=(queue,)) as ex:
            started = {queue.get(timeout=TIMEOUT) for _ in range(2)}
            assert started == set(ex.statistics().worker_pids)
            assert os.getpid() not in started
    finally:
        queue.close()
        queue.join_thread()
