"""CPython's own test_concurrent_futures, run against multilane.ProcessPoolExecutor.

The tests are not copied here: they are imported at run time from the running
interpreter's standard library (``test.test_concurrent_futures``, a package since 3.12,
installed with 3.13 here), and every ProcessPool test class is run with its executor class
swapped for ``multilane.ProcessPoolExecutor``:

- each generated class is subclassed here with ``executor_type = multilane.ProcessPoolExecutor``;
- for the duration of each test, the three ProcessPool mixins of ``util`` say the same (a
  test such as ``FailingInitializerResourcesTest`` runs CPython's classes directly),
  ``concurrent.futures.ProcessPoolExecutor`` is multilane's (tests that name it), and the
  scripts ``test_shutdown`` runs in a child interpreter import multilane's class under the
  standard name.

pytest collects the subclasses as ordinary unittest cases: one pytest test per CPython
test, each under a 60 s timeout. CPython's own skips still apply: test_hang_gh83386 skips
itself when the executor is ``concurrent.futures.ProcessPoolExecutor`` (which it is here,
swapped), and test_max_workers_too_large runs on Windows only.

Only the "spawn" variant of each class runs. CPython generates each class three times, for
the fork, forkserver and spawn start methods, which differ only in the ``mp_context`` given
to the executor. multilane accepts ``mp_context`` and ignores it (it only checks that it
looks like a context): its workers are always fresh interpreters (``python -m
multilane.worker``), never forks of the caller. The three variants would run the same
multilane code three times; spawn is the one whose expectations match what multilane does
(the fork variants expect fork-only behaviour, such as ``max_tasks_per_child`` being
refused with a fork context).

EXCLUDED lists the tests left out, each because it reads the standard executor's private
attributes (or, for one, patches threading to break the standard executor's private
thread layout); XFAIL the tests that fail on multilane today (none now), each with its
cause (strict: a fixed one fails as XPASS until it is taken off the list). Both are keyed
by the test's id, ``Class.method`` (its pytest id and the end of its CPython id). A test in
XFAIL has the pools it left open terminated, and its frames cleared, when it fails.
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import sys
import traceback
import unittest
import weakref

import pytest


def _has_cpython_tests() -> bool:
    try:
        return importlib.util.find_spec("test.test_concurrent_futures.util") is not None
    except ImportError:
        return False


if not _has_cpython_tests():
    pytest.skip(f"Python {sys.version_info[0]}.{sys.version_info[1]} here has no copy of "
                "CPython's test.test_concurrent_futures package (CPython's test suite is "
                "not installed with this interpreter)", allow_module_level=True)

import concurrent.futures  # noqa: E402

import multilane  # noqa: E402

pytestmark = pytest.mark.timeout(60)

# CPython's modules with ProcessPool test classes (test_future and test_thread_pool have none).
_MODULES = ("test_process_pool", "test_shutdown", "test_deadlock", "test_init",
            "test_as_completed", "test_wait")

_PROCESSES = "reads the standard executor's private _processes (its dict of worker Process objects)"
EXCLUDED: dict[str, str] = {
    "ProcessPoolSpawnProcessPoolExecutorTest.test_python_finalization_error":
        "patches threading._start_joinable_thread to fail the standard executor's second "
        "thread start (its queue feeder); multilane starts one thread, in __init__, and no "
        "feeder",
    "ProcessPoolSpawnProcessPoolExecutorTest.test_killed_child":
        _PROCESSES + " to kill a worker",
    "ProcessPoolSpawnProcessPoolExecutorTest.test_saturation": _PROCESSES,
    "ProcessPoolSpawnProcessPoolExecutorTest.test_idle_process_reuse_one": _PROCESSES,
    "ProcessPoolSpawnProcessPoolExecutorTest.test_idle_process_reuse_multiple": _PROCESSES,
    "ProcessPoolSpawnProcessPoolExecutorTest.test_max_tasks_per_child": _PROCESSES,
    "ProcessPoolSpawnProcessPoolExecutorTest.test_max_tasks_per_child_defaults_to_spawn_context":
        "reads the standard executor's private _mp_context",
    "ProcessPoolSpawnProcessPoolShutdownTest.test_processes_terminate": _PROCESSES,
    "ProcessPoolSpawnProcessPoolShutdownTest.test_context_manager_shutdown": _PROCESSES,
    "ProcessPoolSpawnProcessPoolShutdownTest.test_del_shutdown":
        "reads the standard executor's private _processes, _call_queue and "
        "_executor_manager_thread",
    "ProcessPoolSpawnProcessPoolShutdownTest.test_shutdown_no_wait":
        "reads the standard executor's private _processes, _call_queue and "
        "_executor_manager_thread",
    "ProcessPoolSpawnExecutorDeadlockTest.test_shutdown_deadlock_pickle":
        "reads the standard executor's private _executor_manager_thread",
}

_BROKEN = "BrokenProcessPool (as the standard executor)"
XFAIL: dict[str, str] = {}
# A test that hangs today gets a short bound: it fails (xfails) fast, and passes fast once fixed.
_TIMEOUTS: dict[str, float] = {}


def _excluded(reason: str):
    @unittest.skip(f"excluded: {reason}")
    def test(self):
        pass
    return test


def _open_pools() -> weakref.WeakSet:
    return weakref.WeakSet(obj for obj in gc.get_objects()
                           if isinstance(obj, multilane.ProcessPoolExecutor))


def _after_failure(error: BaseException, before: weakref.WeakSet) -> None:
    """A failed CPython test can leave a pool open (it shuts down only the pools of tests
    that pass) and objects with finalizers (Manager proxies, semaphores) in its frames:
    terminate the one and collect the other now, so that no later test pays for them."""
    for pool in _open_pools():
        if pool not in before:
            try:
                pool.terminate()
            except Exception:  # one whose __init__ raised has nothing to stop
                pass
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    gc.collect()


def _expected_to_fail(base: type, key: str, name: str):
    original = getattr(base, name)

    @functools.wraps(original)
    def test(self):
        before = _open_pools()
        try:
            original(self)
        except BaseException as error:
            _after_failure(error, before)
            raise
    test = pytest.mark.xfail(strict=True, reason=XFAIL[key])(test)
    if key in _TIMEOUTS:
        test = pytest.mark.timeout(_TIMEOUTS[key])(test)
    return test


def _adapt(cls: type) -> type:
    """A subclass of CPython's ``cls`` that runs multilane's executor."""
    attrs: dict = {"__module__": __name__, "__qualname__": cls.__name__,
                   "__doc__": f"CPython's {cls.__module__}.{cls.__name__} on multilane."}
    if hasattr(cls, "executor_type"):
        attrs["executor_type"] = multilane.ProcessPoolExecutor
    for name in unittest.TestLoader().getTestCaseNames(cls):
        key = f"{cls.__name__}.{name}"
        if key in EXCLUDED:
            attrs[name] = _excluded(EXCLUDED[key])
        elif key in XFAIL:
            attrs[name] = _expected_to_fail(cls, key, name)
    return type(cls.__name__, (cls,), attrs)


_util = importlib.import_module("test.test_concurrent_futures.util")
_cpython = {name: importlib.import_module(f"test.test_concurrent_futures.{name}")
            for name in _MODULES}
for _module in _cpython.values():
    for _name, _cls in vars(_module).items():
        if (isinstance(_cls, type) and issubclass(_cls, unittest.TestCase)
                and _cls.__module__ == _module.__name__
                and (_name.startswith("ProcessPoolSpawn")
                     or _name == "FailingInitializerResourcesTest")):
            globals()[_name] = _adapt(_cls)
del _module, _name, _cls

# The lists were written against CPython 3.13's copy; another version may lack a test.
_unknown = {key for key in (*EXCLUDED, *XFAIL)
            if not hasattr(globals().get(key.split(".")[0]), key.split(".")[1])}
assert sys.version_info[:2] != (3, 13) or not _unknown, (
    f"EXCLUDED or XFAIL name tests that do not exist: {_unknown}")

_SWAP = ("import concurrent.futures, multilane\n"
         "concurrent.futures.ProcessPoolExecutor = multilane.ProcessPoolExecutor\n")


def _child_uses_multilane(assert_python_ok):
    """test_shutdown runs scripts (``-c``) in a child interpreter that import the executor
    by name from concurrent.futures: give them multilane's under that name."""
    @functools.wraps(assert_python_ok)
    def run(*args, **kwargs):
        args = list(args)
        if len(args) >= 2 and args[0] == "-c":
            args[1] = _SWAP + args[1]
        return assert_python_ok(*args, **kwargs)
    return run


@pytest.fixture(autouse=True)
def _multilane_is_the_process_pool(monkeypatch):
    for mixin in (_util.ProcessPoolForkMixin, _util.ProcessPoolForkserverMixin,
                  _util.ProcessPoolSpawnMixin):
        monkeypatch.setattr(mixin, "executor_type", multilane.ProcessPoolExecutor)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", multilane.ProcessPoolExecutor)
    shutdown = _cpython["test_shutdown"]
    monkeypatch.setattr(shutdown, "assert_python_ok",
                        _child_uses_multilane(shutdown.assert_python_ok))
