"""Waiting calls that would keep the caller's GIL busy on threads are spread over the
worker processes, many at once in each; what a process cannot take stays on threads."""

from __future__ import annotations

import importlib
import os
import threading

import _tasks
import pytest
from conftest import TIMEOUT, wait_until

import multilane

MANY_CORES = (os.cpu_count() or 1) >= 2
CALLS = 300  # of 0.4 ms waits and 0.3 ms of GIL-held work: ~90 ms of GIL on threads


@pytest.fixture
def ex(no_leaks):
    with multilane.Executor(processes=2) as executor:
        yield executor


@pytest.mark.skipif(not MANY_CORES, reason="spreading needs a second core")
def test_waiting_calls_the_gil_holds_back_are_spread_over_the_workers(ex):
    # (Submitted calls spread only as far as they wait in the backlog at the decision,
    # which is now a few: their probe no longer waits for the submitter's GIL. Spreading
    # the calls of a stream as they come is still to do: see docs/architecture.md.)
    on_workers = ex.options(lane="process")
    wait_until(lambda: len({f.result(TIMEOUT) for f in  # every worker is up
                            [on_workers.submit(os.getpid) for _ in range(8)]}) == 2)
    pids = list(ex.map(_tasks.wait_then_compute, [0.0004] * CALLS, [0.0003] * CALLS))
    (profile,) = ex.explain(_tasks.wait_then_compute).profiles
    assert profile["lane"] == "thread" and profile["spread"] == 2, profile
    assert "spread over 2 worker processes" in str(ex.explain(_tasks.wait_then_compute))
    workers = set(ex.statistics()["process"].worker_pids)
    assert len(pids) == CALLS and set(pids) - {os.getpid()} <= workers
    assert len(set(pids) & workers) == 2


@pytest.mark.skipif(not MANY_CORES, reason="spreading needs a second core")
def test_a_function_no_process_can_take_stays_on_threads(ex):
    lock = threading.Lock()

    def waits_under_a_lock(i):  # a closure over a lock: it cannot be pickled
        with lock:
            pass
        return _tasks.wait_then_compute(0.0004, 0.0003)

    assert set(ex.map(waits_under_a_lock, range(CALLS))) == {os.getpid()}
    futures = [ex.submit(waits_under_a_lock, i) for i in range(CALLS)]
    assert {f.result(TIMEOUT) for f in futures} == {os.getpid()}


@pytest.mark.skipif(not MANY_CORES, reason="spreading needs a second core")
def test_arguments_no_process_can_take_stay_on_threads(ex):
    lock = threading.Lock()

    def waits(i, held):
        return _tasks.wait_then_compute(0.0004, 0.0003)

    futures = [ex.submit(waits, i, lock) for i in range(CALLS)]
    assert {f.result(TIMEOUT) for f in futures} == {os.getpid()}


@pytest.mark.skipif(not MANY_CORES, reason="spreading needs a second core")
def test_an_exception_in_a_spread_map_comes_with_the_results_before_it(ex):
    items = [0.0] * CALLS
    items[CALLS - 5] = -1.0  # time.sleep(-1) raises ValueError
    results = ex.map(_tasks.wait_then_compute, items, [0.0003] * CALLS)
    got = []
    with pytest.raises(ValueError):
        for value in results:
            got.append(value)
    assert len(got) == CALLS - 5, str(ex.explain(_tasks.wait_then_compute))


@pytest.mark.skipif(not MANY_CORES, reason="spreading needs a second core")
def test_a_function_no_worker_can_load_is_spread_back_here(ex, tmp_path, monkeypatch):
    # The workers start before the module's directory is on sys.path: they cannot import
    # it, and the calls spread to them never run there. They run here instead, and the
    # function goes to no process again.
    on_workers = ex.options(lane="process")
    wait_until(lambda: len({f.result(TIMEOUT) for f in
                            [on_workers.submit(os.getpid) for _ in range(8)]}) == 2)
    (tmp_path / "not_in_the_spread_workers.py").write_text(
        "import _tasks\n\n\ndef waits(wait, work):\n"
        "    return _tasks.wait_then_compute(wait, work)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    lost = importlib.import_module("not_in_the_spread_workers")
    assert set(ex.map(lost.waits, [0.0004] * CALLS, [0.0003] * CALLS)) == {os.getpid()}
    (profile,) = ex.explain(lost.waits).profiles
    assert profile["lane"] == "thread", profile
    if profile["spread"]:  # (spreading may not pay on a busy machine: then nothing to see)
        assert "a worker cannot load it" in str(ex.explain(lost.waits))
