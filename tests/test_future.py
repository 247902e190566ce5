"""multilane's Future subclass against concurrent.futures.Future as the oracle: every state
transition its fast paths touch must behave exactly as the standard one."""

from __future__ import annotations

import concurrent.futures as cf
import threading

import pytest
from conftest import TIMEOUT

from multilane._process_pool import _Future

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
