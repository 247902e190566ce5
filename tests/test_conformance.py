"""One conformance suite for every executor, with the standard library's as the oracle.

In the manner of loky's: each behaviour is written once against the ``concurrent.futures``
API and runs on every kind of executor below, swept over worker counts::

    kind            the executor under test, with n workers
    --------------  ------------------------------------------------------------------
    stdlib-process  concurrent.futures.ProcessPoolExecutor(n) (spawn): the oracle
    stdlib-thread   concurrent.futures.ThreadPoolExecutor(n): the oracle for threads
    pool            multilane.ProcessPoolExecutor(n)
    process, thread, inline, hybrid, auto
                    multilane.Executor(processes=n, threads=n, hybrid_processes=n,
                                       lane=kind)

``TestCommon`` holds what every executor does alike, on one executor per kind and size
shared by the class (n = 1 and 2; the ``AtFourWorkers`` part also at n = 4).
``TestCoroutines`` runs coroutine functions, on the async lane and on an oracle that runs
each with ``asyncio.run`` on a thread. The lifecycle tests (shutdown, the context
manager) and the faults of process workers make an executor each (``fresh``), and check
multilane's for leaks. Where multilane is deliberately different (a dead worker fails
only its own task, with ``WorkerCrashed``, and the pool goes on; the standard pool breaks
for good), a test asserts multilane's documented behaviour and that the oracle breaks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, NamedTuple

import _conformance_tasks as t
import pytest
from conftest import TIMEOUT, children, gone_within, wait_until

import multilane

# ---------------------------------------------------------------- the executors


def _executor(lane: str) -> Callable[[int], cf.Executor]:
    def make(n: int) -> cf.Executor:
        return multilane.Executor(processes=n, threads=n, hybrid_processes=n, lane=lane)
    return make


def _stdlib_process(n: int) -> cf.Executor:
    # spawn, not fork: the suite's process has multilane's threads running, and fork()
    # in a threaded process may deadlock the child.
    return cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


class _CoroutineOracle(cf.ThreadPoolExecutor):
    """The oracle for coroutine functions: each call runs with ``asyncio.run`` on a thread."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_run_coroutine, fn, args, kwargs)


def _run_coroutine(fn, args, kwargs):
    return asyncio.run(fn(*args, **kwargs))


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[int], cf.Executor]
    multilane: bool = True  # else the standard library's: the oracle
    processes: bool = False  # calls cross a process boundary (pickling, worker faults)
    inline: bool = False  # calls run in the caller, before submit returns


KINDS = {kind.name: kind for kind in (
    Kind("stdlib-process", _stdlib_process, multilane=False, processes=True),
    Kind("stdlib-thread", cf.ThreadPoolExecutor, multilane=False),
    Kind("pool", multilane.ProcessPoolExecutor, processes=True),
    Kind("process", _executor("process"), processes=True),
    Kind("thread", _executor("thread")),
    Kind("inline", _executor("inline"), inline=True),
    Kind("hybrid", _executor("hybrid"), processes=True),
    Kind("auto", _executor("auto")),
    Kind("stdlib-coroutine", _CoroutineOracle, multilane=False),
    Kind("async", _executor("async")),
)}
COMMON = [name for name in KINDS if name not in ("stdlib-coroutine", "async")]
PROCESS_BACKED = ["stdlib-process", "pool", "process", "hybrid"]


def sweep(kinds: list[str], sizes: tuple[int, ...]) -> list:
    """Parameters (kind, workers) for the ``subject`` and ``fresh`` fixtures."""
    return [pytest.param((kind, n), id=f"{kind}-{n}") for n in sizes for kind in kinds]


class Subject(NamedTuple):
    kind: Kind
    workers: int
    executor: Any


def _leftovers(before_children: set[int], before_threads: set[int | None]) -> list[str]:
    left = [f"process {pid}" for pid in children() - before_children]
    left += [f"thread {th.name}" for th in threading.enumerate()
             if th.ident not in before_threads]
    return left


@pytest.fixture(scope="class")
def subject(request):
    """An executor shared by a test class (tests that shut it down use ``fresh``).
    A multilane one must leave no process or thread behind once shut down."""
    kind, n = KINDS[request.param[0]], request.param[1]
    before = children(), {th.ident for th in threading.enumerate()}
    executor = kind.make(n)
    yield Subject(kind, n, executor)
    executor.shutdown(wait=True, cancel_futures=True)
    if kind.multilane:
        assert not _leftovers(*before), f"{kind.name}-{n} left {_leftovers(*before)}"


class Fresh(NamedTuple):
    kind: Kind
    workers: int
    make: Callable[[], Any]


@pytest.fixture
def fresh(request):
    """Makes executors of one kind and size for a test, shut down after it; the multilane
    ones under ``no_leaks``."""
    kind, n = KINDS[request.param[0]], request.param[1]
    if kind.multilane:
        request.getfixturevalue("no_leaks")  # set up first: its check runs after our teardown
    made: list = []

    def make():
        made.append(kind.make(n))
        return made[-1]

    yield Fresh(kind, n, make)
    for executor in made:
        executor.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- helpers

# Keyword arguments named like multilane.Executor's options, with plausible values.
OPTION_LIKE = {"timeout": 2.5, "lane": "inline", "retries": 2, "retry_on": (KeyError,),
               "chunksize": 3}


def needs_background(subject) -> None:
    if subject.kind.inline:
        pytest.skip("the inline lane runs each call before submit returns: nothing to wait for")


def release(gate: str) -> None:
    with open(gate, "w"):
        pass


def queue_filler(workers: int) -> int:
    """Calls enough to occupy every worker and every slot queued ahead of one (a hybrid
    worker runs 32 at once; a process worker takes up to 16 ahead), and more."""
    return 40 * workers + 8


def remote_frame(exc: BaseException, function: str) -> bool:
    """True if the formatted exception (with its cause) shows a frame of ``function``."""
    return f", in {function}\n" in "".join(traceback.format_exception(exc))


def pool_still_works(ex) -> None:
    assert ex.submit(t.square, 7).result(TIMEOUT) == 49
    assert list(ex.map(t.square, range(8), timeout=TIMEOUT)) == [i * i for i in range(8)]


def pool_is_broken(ex) -> None:
    """The standard pool after a fault: every new call fails (submit raises, or the future
    does if the pool noticed only after accepting it)."""
    with pytest.raises(BrokenProcessPool):
        ex.submit(t.square, 7).result(TIMEOUT)


def process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# ================================================================ every executor


class AtFourWorkers:
    """The part of the common behaviour that also runs at four workers."""

    def test_submit_returns_a_standard_future_with_the_result(self, subject):
        future = subject.executor.submit(t.add, 2, b=3)
        assert isinstance(future, cf.Future)
        assert future.result(TIMEOUT) == 5

    def test_map_keeps_order(self, subject):
        results = subject.executor.map(t.square, range(60), timeout=TIMEOUT)
        assert list(results) == [i * i for i in range(60)]

    def test_as_completed_yields_each_future_once(self, subject):
        futures = [subject.executor.submit(t.square, i) for i in range(20)]
        seen = list(cf.as_completed(futures, timeout=TIMEOUT))
        assert sorted(map(futures.index, seen)) == list(range(20))
        assert sorted(f.result() for f in seen) == [i * i for i in range(20)]

    def test_queued_calls_can_be_cancelled(self, subject, tmp_path):
        needs_background(subject)
        gate = str(tmp_path / "gate")
        count = queue_filler(subject.workers)
        futures = [subject.executor.submit(t.block_until, gate, 0)]
        futures += [subject.executor.submit(t.queue_behind, gate, i) for i in range(1, count)]
        queued = futures[-3:]
        try:
            wait_until(futures[0].running, message="the first call never started")
            assert not futures[0].cancel()  # running: too late
            assert [f.cancel() for f in queued] == [True] * 3
            assert all(f.cancelled() and f.done() for f in queued)
        finally:
            release(gate)
        for future in queued:
            with pytest.raises(cf.CancelledError):
                future.result(TIMEOUT)
        assert [f.result(TIMEOUT) for f in futures[:-3]] == list(range(count - 3))

    def test_asyncio_wrap_future_and_run_in_executor(self, subject):
        async def main():
            loop = asyncio.get_running_loop()
            wrapped = asyncio.wrap_future(subject.executor.submit(t.square, 6))
            ran = loop.run_in_executor(subject.executor, t.add, 1, 2)
            return await asyncio.wait_for(asyncio.gather(wrapped, ran), TIMEOUT)

        assert asyncio.run(main()) == [36, 3]


@pytest.mark.parametrize("subject", sweep(COMMON, (4,)), indirect=True, scope="class")
class TestAtFourWorkers(AtFourWorkers):
    pass


@pytest.mark.parametrize("subject", sweep(COMMON, (1, 2)), indirect=True, scope="class")
class TestCommon(AtFourWorkers):
    def test_keyword_arguments_reach_the_function_unchanged(self, subject):
        future = subject.executor.submit(t.echo, 1, "two", a=3, b=[4], c=None)
        assert future.result(TIMEOUT) == ((1, "two"), {"a": 3, "b": [4], "c": None})

    @pytest.mark.parametrize("name", list(OPTION_LIKE))
    def test_keywords_named_like_options_reach_the_function(self, subject, name):
        value = OPTION_LIKE[name]
        future = subject.executor.submit(t.echo, 1, **{name: value})
        assert future.result(TIMEOUT) == ((1,), {name: value})

    def test_map_with_several_iterables_stops_at_the_shortest(self, subject):
        results = subject.executor.map(t.add, [1, 2, 3], (10, 20, 30, 40), timeout=TIMEOUT)
        assert list(results) == [11, 22, 33]

    def test_map_of_nothing_is_empty(self, subject):
        assert list(subject.executor.map(t.square, [], timeout=TIMEOUT)) == []

    def test_map_takes_any_iterable(self, subject):
        results = subject.executor.map(t.square, (i for i in range(10)), timeout=TIMEOUT)
        assert list(results) == [i * i for i in range(10)]

    @pytest.mark.parametrize("chunksize", [1, 4, 100])
    def test_map_with_a_chunksize_keeps_order(self, subject, chunksize):
        results = subject.executor.map(t.square, range(30), timeout=TIMEOUT,
                                       chunksize=chunksize)
        assert list(results) == [i * i for i in range(30)]

    def test_map_rejects_a_chunksize_below_one(self, subject):
        if subject.kind.name == "stdlib-thread":
            pytest.skip("ThreadPoolExecutor.map ignores chunksize")
        with pytest.raises(ValueError, match=r"^chunksize must be >= 1\.$"):
            subject.executor.map(t.square, range(3), chunksize=0)

    def test_map_yields_the_results_before_a_failing_item_then_raises(self, subject):
        results = subject.executor.map(t.fail_at, range(10), [4] * 10, timeout=TIMEOUT)
        got = []
        with pytest.raises(ValueError, match="^bad item 4$"):
            for result in results:
                got.append(result)
        assert got == [0, 1, 2, 3]

    def test_map_timeout_raises_timeout_error(self, subject, tmp_path):
        needs_background(subject)
        gate = str(tmp_path / "gate")
        results = subject.executor.map(t.block_until, [gate], timeout=0.05)
        try:
            with pytest.raises(TimeoutError):
                next(results)
        finally:
            release(gate)

    def test_result_timeout_leaves_the_call_running(self, subject, tmp_path):
        needs_background(subject)
        gate = str(tmp_path / "gate")
        future = subject.executor.submit(t.block_until, gate, "done")
        try:
            with pytest.raises(TimeoutError):
                future.result(timeout=0.05)
            assert not future.done()
        finally:
            release(gate)
        assert future.result(TIMEOUT) == "done"

    def test_an_exception_reaches_the_caller_with_the_task_traceback(self, subject):
        future = subject.executor.submit(t.raise_value_error, "boom")
        with pytest.raises(ValueError, match="^boom$") as caught:
            future.result(TIMEOUT)
        assert future.exception(TIMEOUT) is caught.value
        assert remote_frame(caught.value, "raise_value_error")
        if subject.kind.processes:  # the worker's traceback, as text, is the cause
            cause = caught.value.__cause__
            assert type(cause).__name__ in ("_RemoteTraceback", "RemoteTraceback")
            assert ", in raise_value_error\n" in str(cause)

    def test_an_exception_keeps_its_type_and_attributes(self, subject):
        error = subject.executor.submit(t.raise_custom, 42).exception(TIMEOUT)
        assert type(error) is t.CustomError
        assert (error.code, error.detail, error.args) == (42, "custom detail",
                                                           (42, "custom detail"))

    def test_wait_returns_at_the_first_completed_call(self, subject, tmp_path):
        needs_background(subject)
        gate = str(tmp_path / "gate")
        quick = subject.executor.submit(t.square, 3)
        slow = subject.executor.submit(t.block_until, gate, "slow")
        try:
            done, not_done = cf.wait([slow, quick], timeout=TIMEOUT,
                                     return_when=cf.FIRST_COMPLETED)
            assert (done, not_done) == ({quick}, {slow})
        finally:
            release(gate)
        done, not_done = cf.wait([slow, quick], timeout=TIMEOUT)
        assert (done, not_done) == ({quick, slow}, set())
        assert (quick.result(), slow.result()) == (9, "slow")

    def test_wait_returns_at_the_first_exception(self, subject):
        futures = [subject.executor.submit(t.fail_at, i, 2) for i in range(4)]
        done, _ = cf.wait(futures, timeout=TIMEOUT, return_when=cf.FIRST_EXCEPTION)
        assert futures[2] in done
        assert isinstance(futures[2].exception(), ValueError)

    def test_done_callbacks_run_once_with_the_future(self, subject):
        called = []
        seen = threading.Event()

        def callback(future):
            called.append(future)
            seen.set()

        future = subject.executor.submit(t.square, 5)
        future.add_done_callback(callback)
        assert seen.wait(TIMEOUT)
        assert future.result() == 25
        late = []
        future.add_done_callback(late.append)  # on a finished future: called at once
        assert (called, late) == ([future], [future])


# ================================================================ lifecycle


@pytest.mark.parametrize("fresh", sweep(COMMON, (1, 2)), indirect=True)
def test_the_context_manager_waits_for_the_work(fresh):
    with fresh.make() as ex:
        futures = [ex.submit(t.square, i) for i in range(10)]
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [i * i for i in range(10)]


@pytest.mark.parametrize("fresh", sweep(COMMON, (1,)), indirect=True)
def test_submit_and_map_after_shutdown_raise_runtime_error(fresh):
    ex = fresh.make()
    assert ex.submit(t.square, 2).result(TIMEOUT) == 4
    ex.shutdown(wait=True)
    ex.shutdown(wait=True)  # again: nothing happens
    with pytest.raises(RuntimeError, match="^cannot schedule new futures after shutdown$"):
        ex.submit(t.square, 2)
    with pytest.raises(RuntimeError, match="^cannot schedule new futures after shutdown$"):
        ex.map(t.square, range(3))


@pytest.mark.parametrize("fresh", sweep(COMMON, (1,)), indirect=True)
def test_shutdown_without_waiting_still_runs_the_submitted_calls(fresh):
    ex = fresh.make()
    futures = [ex.submit(t.square, i) for i in range(10)]
    ex.shutdown(wait=False)
    done, not_done = cf.wait(futures, timeout=TIMEOUT)
    assert not not_done
    assert [f.result() for f in futures] == [i * i for i in range(10)]


@pytest.mark.parametrize("fresh", sweep(COMMON, (1, 2)), indirect=True)
def test_shutdown_cancel_futures_cancels_the_queued_calls(fresh, tmp_path):
    if fresh.kind.inline:
        pytest.skip("the inline lane runs each call before submit returns: nothing queued")
    ex = fresh.make()
    gate = str(tmp_path / "gate")
    count = queue_filler(fresh.workers)
    futures = [ex.submit(t.block_until, gate, i) for i in range(count)]
    try:
        wait_until(futures[0].running, message="the first call never started")
        ex.shutdown(wait=False, cancel_futures=True)
        wait_until(futures[-1].cancelled, message="the last queued call was never cancelled")
        assert not futures[0].cancelled()
    finally:
        release(gate)
    for i, future in enumerate(futures):  # each one cancelled, or run to its end
        try:
            assert future.result(TIMEOUT) == i
        except cf.CancelledError:
            pass
    if fresh.kind.multilane:
        # multilane also tells wait() and as_completed() of the calls it cancelled; the
        # standard executors cancel them without notifying, so wait() never counts them
        # done (CPython: Future.cancel() without set_running_or_notify_cancel()).
        done, not_done = cf.wait(futures, timeout=TIMEOUT)
        assert not not_done
    ex.shutdown(wait=True)


# ================================================================ coroutine functions


@pytest.mark.parametrize("subject", sweep(["stdlib-coroutine", "async", "auto"], (1,)),
                         indirect=True, scope="class")
class TestCoroutines:
    """``async def`` functions: multilane sends them to its async lane (from any default
    lane); the oracle runs each with ``asyncio.run`` on a thread."""

    def test_submit_runs_the_coroutine_function(self, subject):
        future = subject.executor.submit(t.double_async, 21)
        assert isinstance(future, cf.Future)
        assert future.result(TIMEOUT) == 42

    def test_map_keeps_order(self, subject):
        results = subject.executor.map(t.double_async, range(30), timeout=TIMEOUT)
        assert list(results) == [2 * i for i in range(30)]

    def test_an_exception_reaches_the_caller_with_the_task_traceback(self, subject):
        future = subject.executor.submit(t.raise_async, "boom")
        with pytest.raises(ValueError, match="^boom$") as caught:
            future.result(TIMEOUT)
        assert remote_frame(caught.value, "raise_async")

    def test_keyword_arguments_reach_the_function_unchanged(self, subject):
        future = subject.executor.submit(t.echo_async, 1, a=[2], b=None)
        assert future.result(TIMEOUT) == ((1,), {"a": [2], "b": None})

    @pytest.mark.parametrize("name", list(OPTION_LIKE))
    def test_keywords_named_like_options_reach_the_function(self, subject, name):
        value = OPTION_LIKE[name]
        future = subject.executor.submit(t.echo_async, **{name: value})
        assert future.result(TIMEOUT) == ((), {name: value})

    def test_result_timeout_leaves_the_coroutine_running(self, subject, tmp_path):
        gate = str(tmp_path / "gate")
        future = subject.executor.submit(t.block_until_async, gate, "done")
        try:
            with pytest.raises(TimeoutError):
                future.result(timeout=0.05)
            assert not future.done()
        finally:
            release(gate)
        assert future.result(TIMEOUT) == "done"

    def test_asyncio_wrap_future_and_run_in_executor(self, subject):
        async def main():
            loop = asyncio.get_running_loop()
            wrapped = asyncio.wrap_future(subject.executor.submit(t.double_async, 4))
            ran = loop.run_in_executor(subject.executor, t.double_async, 5)
            return await asyncio.wait_for(asyncio.gather(wrapped, ran), TIMEOUT)

        assert asyncio.run(main()) == [8, 10]


# ================================================================ faults of process workers
#
# Each test makes its own executor: a fault breaks the standard pool for good.


def _fault_kinds(sizes: tuple[int, ...], kinds: list[str] = PROCESS_BACKED) -> Any:
    return pytest.mark.parametrize("fresh", sweep(kinds, sizes), indirect=True)


@_fault_kinds((1,))
def test_an_argument_that_cannot_be_pickled(fresh):
    ex = fresh.make()
    future = ex.submit(t.identity, threading.Lock())  # accepted: its future fails
    with pytest.raises((TypeError, pickle.PicklingError)):
        future.result(TIMEOUT)
    if fresh.kind.multilane:  # naming the argument
        error = future.exception()
        assert isinstance(error, multilane.SerializationError)
        assert str(error) == ("cannot pickle argument 0 (lock) of _conformance_tasks.identity(): "
                              "TypeError: cannot pickle '_thread.lock' object")
    pool_still_works(ex)


@_fault_kinds((1,))
def test_an_argument_that_fails_to_unpickle_in_the_worker(fresh):
    """The standard pool's worker dies reading the call and the pool breaks; multilane
    fails that call alone, with a BrokenProcessPool too (UnpicklingFailed)."""
    ex = fresh.make()
    future = ex.submit(t.identity, t.FailsToUnpickle())
    with pytest.raises(BrokenProcessPool) as caught:
        future.result(TIMEOUT)
    if not fresh.kind.multilane:
        pool_is_broken(ex)
        return
    assert type(caught.value) is multilane.UnpicklingFailed
    assert str(caught.value) == ("the worker could not unpickle the call: "
                                 "ValueError: FailsToUnpickle refuses to be unpickled")
    assert type(caught.value.__cause__) is ValueError
    pool_still_works(ex)


@_fault_kinds((1,))
def test_a_result_that_cannot_be_pickled_in_the_worker(fresh):
    ex = fresh.make()
    with pytest.raises((TypeError, pickle.PicklingError)) as caught:
        ex.submit(t.return_unpicklable).result(TIMEOUT)
    if fresh.kind.multilane:
        assert isinstance(caught.value, multilane.SerializationError)
        assert str(caught.value) == ("cannot pickle the return value (lock): "
                                     "TypeError: cannot pickle '_thread.lock' object")
    pool_still_works(ex)


@_fault_kinds((1,))
def test_a_result_that_fails_to_unpickle_in_the_parent(fresh):
    """The standard pool breaks on a result it cannot read; multilane fails that call
    alone, with a BrokenProcessPool too (UnpicklingFailed)."""
    ex = fresh.make()
    future = ex.submit(t.return_fails_to_unpickle)
    with pytest.raises(BrokenProcessPool) as caught:
        future.result(TIMEOUT)
    if not fresh.kind.multilane:
        pool_is_broken(ex)
        return
    assert type(caught.value) is multilane.UnpicklingFailed
    assert str(caught.value) == (
        "cannot unpickle the return value of _conformance_tasks.return_fails_to_unpickle(): "
        "ValueError: FailsToUnpickle refuses to be unpickled")
    assert type(caught.value.__cause__) is ValueError
    pool_still_works(ex)


@_fault_kinds((1,))
def test_a_result_that_raises_system_exit_when_unpickled_in_the_parent(fresh):
    before = children()
    ex = fresh.make()
    assert ex.submit(t.square, 2).result(TIMEOUT) == 4  # its workers have started
    workers = children() - before
    future = ex.submit(t.return_exits_on_unpickle)
    # Bounded without result(), whose caller may read the reply itself: the future
    # finishes, or the pool's workers die with it.
    wait_until(lambda: future.done() or not workers & children(),
               message="the future neither finished nor did the pool die")
    assert future.done(), "the future never finished; the pool's workers were killed"
    if not fresh.kind.multilane:
        assert isinstance(future.exception(), BrokenProcessPool)
        pool_is_broken(ex)
        return
    assert type(future.exception()) is multilane.UnpicklingFailed
    assert type(future.exception().__cause__) is SystemExit
    pool_still_works(ex)


@_fault_kinds((1,))
@pytest.mark.parametrize("name", ["SystemExit", "KeyboardInterrupt"])
def test_a_task_raising_a_base_exception(fresh, name, monkeypatch):
    # multilane takes a KeyboardInterrupt re-raised by result() for a Ctrl-C and remembers
    # it process-wide (see test_a_task_raising_keyboard_interrupt_is_not_a_ctrl_c): undone
    # after this test, so that it changes nothing for the tests after it.
    monkeypatch.setattr("multilane._future._interrupted", False, raising=False)
    ex = fresh.make()
    future = ex.submit(t.raise_base, name)
    with pytest.raises((SystemExit, KeyboardInterrupt)) as caught:
        future.result(TIMEOUT)
    assert type(caught.value).__name__ == name
    assert remote_frame(caught.value, "raise_base")
    pool_still_works(ex)


@pytest.mark.parametrize("kind", ["stdlib-process", "pool"])
def test_a_task_raising_keyboard_interrupt_is_not_a_ctrl_c(kind, tmp_path):
    """A KeyboardInterrupt that a task raised and the caller caught is the task's outcome,
    not a Ctrl-C: at exit, the interpreter still waits for the calls submitted."""
    gate, exiting, done = (str(tmp_path / name) for name in ("gate", "exiting", "done"))
    make = {"pool": "multilane.ProcessPoolExecutor(1)",
            "stdlib-process": "cf.ProcessPoolExecutor(1, mp_context=mp.get_context('spawn'))"}
    script = "\n".join([
        "import concurrent.futures as cf, multiprocessing as mp, sys",
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})",
        "import multilane, _conformance_tasks as t",
        "if __name__ == '__main__':",
        f"    ex = {make[kind]}",
        "    try:",
        "        ex.submit(t.raise_base, 'KeyboardInterrupt').result(30)",
        "    except KeyboardInterrupt:",
        "        pass",
        f"    ex.submit(t.touch_when, {gate!r}, {done!r})",
        f"    open({exiting!r}, 'w').close()  # then the interpreter exits",
    ])
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: os.path.exists(exiting) or child.poll() is not None,
                   message="the script never reached its end")
        release(gate)  # the call may finish now, if the exit is waiting for it
        _, stderr = child.communicate(timeout=TIMEOUT)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, stderr
    assert os.path.exists(done), "the call submitted before exit never ran"


@_fault_kinds((1, 2))
def test_a_worker_exiting_during_a_task(fresh):
    ex = fresh.make()
    future = ex.submit(t.exit_now, 3)
    if not fresh.kind.multilane:
        with pytest.raises(BrokenProcessPool):
            future.result(TIMEOUT)
        pool_is_broken(ex)
        return
    with pytest.raises(multilane.WorkerCrashed, match=(
            r"^the worker process \(pid \d+\) running _conformance_tasks\.exit_now\(\) "
            r"exited with code 3; the pool replaced it$")) as caught:
        future.result(TIMEOUT)
    assert isinstance(caught.value, BrokenProcessPool)
    assert (caught.value.exitcode, caught.value.signal) == (3, None)
    pool_still_works(ex)


@_fault_kinds((1, 2))
def test_a_worker_killed_during_a_task(fresh, tmp_path):
    ex = fresh.make()
    marker = str(tmp_path / "pid")
    victim = ex.submit(t.announce_and_block, marker)
    pid = int(wait_until(lambda: os.path.exists(marker) and open(marker).read(),
                         message="the task never announced itself"))
    behind = [ex.submit(t.square, i) for i in range(4 * fresh.workers)]
    os.kill(pid, signal.SIGKILL)
    if not fresh.kind.multilane:
        with pytest.raises(BrokenProcessPool):
            victim.result(TIMEOUT)
        for future in behind:  # those another worker finished first keep their result
            assert isinstance(future.exception(TIMEOUT), (BrokenProcessPool, type(None)))
        pool_is_broken(ex)
        return
    with pytest.raises(multilane.WorkerCrashed, match="was killed by SIGKILL") as caught:
        victim.result(TIMEOUT)
    assert (caught.value.pid, caught.value.signal, caught.value.exitcode) == (
        pid, signal.SIGKILL, None)
    if fresh.kind.name != "hybrid":  # a hybrid worker fails every call it was running
        assert [f.result(TIMEOUT) for f in behind] == [i * i for i in range(len(behind))]
    pool_still_works(ex)


@_fault_kinds((1, 2), ["stdlib-process", "pool", "process"])
def test_a_worker_killed_between_tasks(fresh):
    """Killed after its result came back, before it received another task: the result
    stands; multilane runs the next calls on a replacement, the standard pool breaks."""
    ex = fresh.make()
    done = ex.submit(t.get_pid)
    pid = done.result(TIMEOUT)
    os.kill(pid, signal.SIGKILL)
    assert gone_within(pid)
    assert done.result(0) == pid
    if not fresh.kind.multilane:
        pool_is_broken(ex)
        return
    pool_still_works(ex)
    assert pid not in {ex.submit(t.get_pid).result(TIMEOUT) for _ in range(4)}


@_fault_kinds((1,), ["stdlib-process", "pool", "process"])
def test_a_worker_killed_while_its_next_task_waits_for_it(fresh):
    """Stopped (SIGSTOP), handed a task it cannot read, then killed: multilane reruns the
    task, which never started, on a replacement; the standard pool breaks."""
    ex = fresh.make()
    pid = ex.submit(t.get_pid).result(TIMEOUT)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: process_state(pid) in ("T", "gone"), message="never stopped")
        future = ex.submit(t.square, 9)
        wait_until(future.running, message="the call never went to the worker")
    finally:
        os.kill(pid, signal.SIGKILL)
    if not fresh.kind.multilane:
        with pytest.raises(BrokenProcessPool):
            future.result(TIMEOUT)
        pool_is_broken(ex)
        return
    assert future.result(TIMEOUT) == 81
    pool_still_works(ex)


@pytest.mark.parametrize("fresh", sweep(["pool"], (1, 2)), indirect=True)
def test_a_worker_killed_before_its_first_task(fresh):
    """multilane starts its workers with the pool (the standard one starts them on
    demand): one killed before it ran anything is replaced, and no call is lost."""
    ex = fresh.make()
    pid = ex.statistics().worker_pids[0]
    os.kill(pid, signal.SIGKILL)
    assert gone_within(pid)
    pool_still_works(ex)
    stats = wait_until(lambda: (s := ex.statistics()).workers == fresh.workers and s,
                       message="the killed worker was never replaced")
    assert pid not in stats.worker_pids and stats.workers_lost == 1
