"""multilane's Future subclass against concurrent.futures.Future as the oracle: every state
transition its fast paths touch must behave exactly as the standard one."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import threading
import time

import pytest
from conftest import TIMEOUT

from multilane._future import LaneFuture as _Future
from multilane._future import gather, keep_partial_results, partial_results

KINDS = {"multilane": _Future, "stdlib": cf.Future}


def _outcome(action):
    try:
        return ("ok", action())
    except BaseException as exc:  # noqa: BLE001 -- comparing what each raises
        return ("raised", type(exc).__name__)


SCENARIOS = {
    "run then result": lambda f: (f.set_running_or_notify_cancel(), f.set_result(3), f.result()),
    "result while pending": lambda f: (f.set_result(4), f.result(), f.running()),
    "set twice": lambda f: (f.set_result(1), _outcome(lambda: f.set_result(2)), f.result()),
    "cancel then run": lambda f: (f.cancel(), f.set_running_or_notify_cancel(), f.cancelled()),
    "cancel then set": lambda f: (f.cancel(), _outcome(lambda: f.set_result(1))),
    "run twice": lambda f: (f.set_running_or_notify_cancel(),
                            _outcome(f.set_running_or_notify_cancel)),
    "cannot cancel running": lambda f: (f.set_running_or_notify_cancel(), f.cancel()),
    "exception": lambda f: (f.set_exception(KeyError("k")), _outcome(f.result),
                            type(f.exception()).__name__),
    "finished then run": lambda f: (f.set_result(0), _outcome(f.set_running_or_notify_cancel)),
    "timeout": lambda f: _outcome(lambda: f.result(timeout=0.01)),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_transitions_match_the_standard_future(scenario):
    results = {name: _outcome(lambda k=kind: SCENARIOS[scenario](k())) for name, kind in
               KINDS.items()}
    assert results["multilane"] == results["stdlib"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_callbacks_and_waiters_are_told(kind):
    future = KINDS[kind]()
    seen = []
    future.add_done_callback(lambda f: seen.append(f.result()))
    waiter = threading.Thread(target=lambda: seen.append(("waited", future.result(TIMEOUT))))
    waiter.start()
    done = []
    watcher = threading.Thread(target=lambda: done.extend(cf.as_completed([future], TIMEOUT)))
    watcher.start()
    future.set_running_or_notify_cancel()
    future.set_result(7)
    waiter.join(TIMEOUT)
    watcher.join(TIMEOUT)
    assert sorted(map(str, seen)) == ["('waited', 7)", "7"]
    assert done == [future]


def test_a_future_costs_the_gc_two_objects():
    """The condition, its deque and the two lists are made only when first needed: a
    pipelined submit of 100k tasks otherwise spends a sixth of its time in the GC."""
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        futures = [_Future() for _ in range(1000)]
        made = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert len(futures) == 1000
    assert made <= 2 * 1000 + 10  # the future and its lock (+ the list holding them)


def _race_once():
    future = _Future()
    heard = []
    start = threading.Barrier(5)

    def wait_result():
        start.wait(TIMEOUT)
        heard.append(("result", future.result(TIMEOUT)))

    def wait_completed():
        start.wait(TIMEOUT)
        heard.extend(("completed", f.result()) for f in cf.as_completed([future], TIMEOUT))

    def add_callback():
        start.wait(TIMEOUT)
        future.add_done_callback(lambda f: heard.append(("callback", f.result())))

    def finish():
        start.wait(TIMEOUT)
        future.set_running_or_notify_cancel()
        future.set_result(1)

    threads = [threading.Thread(target=t) for t in
               (wait_result, wait_result, wait_completed, add_callback, finish)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)
    return sorted(heard)


def test_lazy_parts_are_made_once_when_threads_race():
    """Waiters, as_completed() and callbacks all race to make the lazy condition and lists
    while another thread finishes the future: every one of them must hear about it."""
    for _ in range(200):
        assert _race_once() == [("callback", 1), ("completed", 1), ("result", 1), ("result", 1)]


def test_a_gathered_failure_carries_the_results_before_it():
    # A segment of a map run call by call (the auto lane's on threads) is a gather of
    # per-call futures: its exception carries the results before the failing call, as a
    # chunk's does, so the map yields them before it raises (it lost them: 266 of 295).
    futures = [_Future() for _ in range(4)]
    piece = gather(futures)
    error = ValueError("third")
    for future, outcome in zip(futures, (1, 2, error, 4), strict=True):
        future.set_running_or_notify_cancel()
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    assert piece.exception(TIMEOUT) is error
    assert partial_results(error) == [1, 2]
    # A chunk's own partial results are never overwritten by a gather over it.
    chunk_error = ValueError("in a chunk")
    keep_partial_results(chunk_error, ["a", "b"])
    failed = _Future()
    failed.set_running_or_notify_cancel()
    failed.set_exception(chunk_error)
    done = _Future()
    done.set_running_or_notify_cancel()
    done.set_result(0)
    gather([done, failed])
    assert partial_results(chunk_error) == ["a", "b"]


def test_a_wait_without_timeout_goes_in_slices_and_still_waits_to_the_end(monkeypatch):
    # Slices of 10 ms: a result set 0.1 s later is waited for across several of them
    # (a slice that times out must not end the wait, nor lose a notify).
    from multilane import _future

    monkeypatch.setattr(_future, "SLICE_S", 0.01)
    future, other = _Future(), _Future()
    timers = [threading.Timer(0.1, future.set_result, ("late",)),
              threading.Timer(0.05, other.set_exception, (ValueError("late too"),))]
    for timer in timers:
        timer.start()
    try:
        assert future.result() == "late"
        assert isinstance(other.exception(), ValueError)
    finally:
        for timer in timers:
            timer.join()


def test_a_result_set_as_a_slice_ends_is_never_missed(monkeypatch):
    # Slices of 50 µs, results set at about that moment, 300 times: a notify that lands
    # as a slice times out is consumed by it; the wait must see the state, not the
    # notify (a wait that trusted the slice's return value hung 3 auto_eval runs in 8).
    from multilane import _future

    monkeypatch.setattr(_future, "SLICE_S", 50e-6)
    for i in range(300):
        future = _Future()
        setter = threading.Thread(target=lambda f=future, i=i: (
            time.sleep((i % 7) * 20e-6), f.set_result(i)))
        waiter_done = threading.Event()
        got: list[int] = []
        waiter = threading.Thread(target=lambda f=future, got=got, done=waiter_done: (
            got.append(f.result()), done.set()))
        waiter.start()
        setter.start()
        assert waiter_done.wait(TIMEOUT), f"result() missed the result set at round {i}"
        setter.join()
        waiter.join()
        assert got == [i]
