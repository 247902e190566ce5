"""multilane.Executor: every lane, asyncio integration, the decorator and bad input."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import os
import pickle
import signal
import threading
import warnings

import _tasks
import pytest
from conftest import TIMEOUT, children, wait_for_file

import multilane
from multilane import LaneError

ALL_LANES = ["process", "thread", "async", "inline", "hybrid"]
SYNC_LANES = ["process", "thread", "inline", "hybrid"]


@pytest.fixture
def ex(no_leaks):
    with multilane.Executor(processes=2, threads=8, hybrid_processes=2,
                            hybrid_concurrency=8) as executor:
        yield executor


def _fn_for(lane):
    return _tasks.double_async if lane == "async" else _tasks.square


def _expected(lane, x):
    return 2 * x if lane == "async" else x * x


# ---------------------------------------------------------------- every lane


@pytest.mark.parametrize("lane", ALL_LANES)
def test_submit_returns_a_standard_future_with_the_result(ex, lane):
    future = ex.options(lane=lane).submit(_fn_for(lane), 7)
    assert isinstance(future, cf.Future)
    assert future.result(TIMEOUT) == _expected(lane, 7)


@pytest.mark.parametrize("lane", ALL_LANES)
def test_map_keeps_order(ex, lane):
    results = list(ex.options(lane=lane).map(_fn_for(lane), range(50), timeout=TIMEOUT))
    assert results == [_expected(lane, i) for i in range(50)]


@pytest.mark.parametrize("lane", ALL_LANES)
def test_exceptions_reach_the_caller(ex, lane):
    fn = _tasks.raise_async if lane == "async" else _tasks.raise_value_error
    with pytest.raises(ValueError, match="boom"):
        ex.options(lane=lane).submit(fn, "boom").result(TIMEOUT)


@pytest.mark.parametrize("lane", ["thread", "process", "hybrid"])
def test_map_timeout(ex, lane, tmp_path):
    it = ex.options(lane=lane).map(_tasks.block_until_file, [str(tmp_path / "never")], timeout=0.2)
    with pytest.raises(cf.TimeoutError):
        next(it)
    (tmp_path / "never").touch()  # lets the blocked call finish before shutdown


def test_calls_run_where_their_lane_says(ex):
    me = os.getpid()
    here = (me, threading.current_thread().name)
    assert ex.options(lane="inline").submit(_tasks.where).result() == here
    pid, thread = ex.options(lane="thread").submit(_tasks.where).result(TIMEOUT)
    assert pid == me and thread.startswith("multilane-thread")
    pid, thread, _ = ex.options(lane="async").submit(_tasks.where_async).result(TIMEOUT)
    assert pid == me and thread == "multilane-async"
    assert ex.options(lane="process").submit(_tasks.where).result(TIMEOUT)[0] != me
    pid, thread = ex.options(lane="hybrid").submit(_tasks.where).result(TIMEOUT)
    assert pid != me and thread.startswith("multilane-hybrid")


def test_lanes_start_lazily_and_threads_never_start_a_process(no_leaks):
    with multilane.Executor() as ex:
        assert ex.lanes() == ()
        assert list(ex.options(lane="thread").map(_tasks.get_pid, range(4))) == [os.getpid()] * 4
        assert ex.lanes() == ("thread",)
        assert children() == set()


def test_inline_runs_before_submit_returns(ex):
    seen = []
    future = ex.options(lane="inline").submit(seen.append, 1)
    assert future.done() and seen == [1]


def test_an_inline_map_runs_every_call_before_it_returns_as_submits_would(ex):
    # One chunk rather than a future per item, with a submit loop's outcome: the results
    # before a failure, the failure, and every call run, the ones after it too.
    seen: list[int] = []

    def inverse(x):
        seen.append(x)
        return 1 / x

    results = ex.options(lane="inline").map(inverse, [1, 2, 0, 4, 0, 5])
    assert seen == [1, 2, 0, 4, 0, 5]
    assert next(results) == 1 and next(results) == 0.5
    with pytest.raises(ZeroDivisionError):
        next(results)
    assert ex.statistics()["inline"].calls == 6
    assert list(ex.options(lane="inline").map(pow, [2, 3], [5, 2])) == [32, 9]


def test_an_inline_map_runs_coroutines_its_calls_return(ex):
    async def twice(x):
        if x < 0:
            raise ValueError(x)
        return 2 * x

    def plain(x):
        return twice(x)  # a plain function that returns a coroutine: run to its end

    inline = ex.options(lane="inline")
    assert list(inline.map(plain, [1, 2])) == [2, 4]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = inline.map(plain, [1, -1, 3])
        assert next(results) == 2
        with pytest.raises(ValueError, match="-1"):
            next(results)
        del results
        gc.collect()
    # The coroutine after the failed one runs too: none is left never awaited.
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_default_lane_is_auto_and_coroutines_go_to_async(ex):
    assert ex.submit(_tasks.square, 3).result(TIMEOUT) == 9
    assert "calls" in str(ex.explain(_tasks.square))  # the auto lane saw it
    pid, thread, _ = ex.submit(_tasks.where_async).result(TIMEOUT)
    assert (pid, thread) == (os.getpid(), "multilane-async")
    with multilane.Executor(lane="thread") as threads_first:
        assert threads_first.submit(_tasks.get_pid).result(TIMEOUT) == os.getpid()
        assert threads_first.lanes() == ("thread",)


def test_coroutine_functions_run_on_the_workers_loop_in_process_lanes(ex):
    for lane in ("process", "hybrid"):
        pid, _, loop = ex.options(lane=lane).submit(_tasks.where_async).result(TIMEOUT)
        assert pid != os.getpid()
        assert "Loop" in loop
    assert list(ex.options(lane="process").map(_tasks.double_async, range(5))) == [0, 2, 4, 6, 8]


def test_thread_lane_runs_a_coroutine_function_on_a_loop_of_its_own(ex):
    pid, thread, _ = ex.options(lane="thread").submit(_tasks.where_async).result(TIMEOUT)
    assert pid == os.getpid() and thread.startswith("multilane-thread")


# ---------------------------------------------------------------- hybrid


def test_a_hybrid_worker_runs_many_calls_at_once(no_leaks):
    """Eight calls meet at a barrier inside one worker process: they can only all pass if
    that worker runs them at the same time, on its inner threads."""
    with multilane.Executor(hybrid_processes=1, hybrid_concurrency=8) as ex:
        pids = list(ex.options(lane="hybrid").map(_tasks.meet, [8] * 8, timeout=TIMEOUT))
    assert len(set(pids)) == 1 and pids[0] != os.getpid()


def test_a_hybrid_worker_runs_many_coroutines_at_once_on_its_loop(no_leaks):
    with multilane.Executor(hybrid_processes=1, hybrid_concurrency=16) as ex:
        pids = list(ex.options(lane="hybrid").map(_tasks.meet_async, [16] * 16, timeout=TIMEOUT))
    assert len(set(pids)) == 1


def test_a_crashed_hybrid_worker_fails_its_calls_and_is_replaced(no_leaks, tmp_path):
    with multilane.Executor(hybrid_processes=1, hybrid_concurrency=4) as ex:
        path = str(tmp_path / "pid")
        blocked = ex.options(lane="hybrid").submit(_tasks.announce_and_block, path)
        waiting = ex.options(lane="hybrid").submit(_tasks.block_until_file, str(tmp_path / "never"))
        pid = wait_for_file(path)
        os.kill(pid, signal.SIGKILL)
        for future in (blocked, waiting):  # both may have started: neither is rerun
            with pytest.raises(multilane.WorkerCrashed, match="SIGKILL"):
                future.result(TIMEOUT)
        assert ex.options(lane="hybrid").submit(_tasks.square, 3).result(TIMEOUT) == 9


# ---------------------------------------------------------------- asyncio


@pytest.mark.parametrize("lane", ALL_LANES)
def test_await_run_on_every_lane(ex, lane):
    async def main():
        return await ex.options(lane=lane).run(_fn_for(lane), 6)

    assert asyncio.run(main()) == _expected(lane, 6)


@pytest.mark.parametrize("lane", ALL_LANES)
def test_map_async_yields_results_in_order(ex, lane):
    async def main():
        return [r async for r in ex.options(lane=lane).map_async(_fn_for(lane), range(30))]

    assert asyncio.run(main()) == [_expected(lane, i) for i in range(30)]


def test_leaving_map_async_early_cancels_what_has_not_started(no_leaks, tmp_path):
    started = []

    def record_and_block(path):
        started.append(path)
        return _tasks.block_until_file(path)

    go, never = str(tmp_path / "go"), str(tmp_path / "never")
    with multilane.Executor(threads=1) as ex:

        async def main():
            gen = ex.options(lane="thread").map_async(record_and_block, [go] + [never] * 5)
            (tmp_path / "go").touch()
            first = await gen.__anext__()
            await gen.aclose()
            return first

        assert asyncio.run(main()) == os.getpid()
        (tmp_path / "never").touch()  # releases the one call that may have started
    assert len(started) <= 2, started  # the first, and perhaps the next; never the rest


def test_run_in_executor_and_wrap_future(ex):
    async def main():
        loop = asyncio.get_running_loop()
        a = await loop.run_in_executor(ex, _tasks.square, 5)
        b = await asyncio.wrap_future(ex.options(lane="thread").submit(_tasks.square, 6))
        return a, b

    assert asyncio.run(main()) == (25, 36)


def test_inline_run_awaits_a_coroutine_on_the_running_loop(ex):
    async def main():
        loop = asyncio.get_running_loop()

        async def same_loop():
            return asyncio.get_running_loop() is loop

        return await ex.options(lane="inline").run(same_loop)

    assert asyncio.run(main()) is True


def test_cancelling_the_awaiting_task_cancels_a_queued_call(no_leaks, tmp_path):
    with multilane.Executor(threads=1) as ex:
        gate = str(tmp_path / "gate")
        first = ex.options(lane="thread").submit(_tasks.block_until_file, gate)

        async def main():
            waiter = asyncio.ensure_future(ex.options(lane="thread").run(_tasks.square, 2))
            await asyncio.sleep(0)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter

        asyncio.run(main())
        (tmp_path / "gate").touch()
        assert first.result(TIMEOUT) == os.getpid()


# ---------------------------------------------------------------- the decorator


def test_task_decorator_keeps_plain_calls_plain():
    assert _tasks.cube_in_process(3) == 27
    assert _tasks.cube_in_process.__name__ == "cube_in_process"
    assert asyncio.run(_tasks.triple_async(2)) == 6


def test_task_decorator_submit_map_and_run(no_leaks):
    with multilane.Executor(processes=1) as ex:
        cube = multilane.task(_tasks.cube_in_process.__wrapped__, lane="process", executor=ex)
        assert cube.submit(2).result(TIMEOUT) == 8
        assert list(cube.map(range(4))) == [0, 1, 8, 27]
        assert asyncio.run(cube.run(3)) == 27
        triple = multilane.task(_tasks.triple_async.__wrapped__, executor=ex)
        assert triple.submit(5).result(TIMEOUT) == 15

        async def collect():
            return [r async for r in triple.map_async([1, 2])]

        assert asyncio.run(collect()) == [3, 6]


def test_task_functions_pickle_by_name_and_are_sent_once_per_worker(no_leaks):
    assert pickle.loads(pickle.dumps(_tasks.cube_in_process)) is _tasks.cube_in_process
    with multilane.Executor(processes=1) as ex:
        for x in range(3):
            future = ex.options(lane="process").submit(_tasks.cube_in_process, x)
            assert future.result(TIMEOUT) == x ** 3
        pool = ex._lanes.get("process").pool
        assert len(pool._functions) == 1  # cached: named by id after the first call


def test_task_default_executor_is_shared_lazy_and_made_again_after_shutdown(no_leaks):
    first = multilane.default_executor()
    assert first is multilane.default_executor() and first.lanes() == ()
    assert _tasks.triple_async.submit(1).result(TIMEOUT) == 3
    assert first.lanes() == ("async",)
    first.shutdown()  # the lanes' threads must not outlive the test (no_leaks checks)
    assert multilane.default_executor() is not first


def test_task_decorator_checks_the_lane_when_applied():
    with pytest.raises(LaneError, match="unknown lane 'thraed'.*did you mean 'thread'"):
        multilane.task(lane="thraed")
    with pytest.raises(LaneError, match="plain function.*lane='thread'"):
        multilane.task(_tasks.square, lane="async")


# ---------------------------------------------------------------- bad input


def test_unknown_lane_lists_the_valid_ones(ex):
    with pytest.raises(LaneError) as info:
        ex.options(lane="gpu").submit(_tasks.square, 1)
    for lane in ALL_LANES + ["auto"]:
        assert repr(lane) in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(LaneError, match="did you mean 'process'"):
        list(ex.options(lane="proces").map(_tasks.square, [1]))


def test_plain_function_on_the_async_lane_says_what_to_do(ex):
    with pytest.raises(LaneError, match="plain function.*lane='thread'.*async def"):
        ex.options(lane="async").submit(_tasks.square, 1)


def test_coroutine_object_instead_of_function_says_what_to_do(ex):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" on top of it
        with pytest.raises(TypeError, match=r"coroutine object.*submit\(double_async, arg\)"):
            ex.submit(_tasks.double_async(1))


def test_not_callable(ex):
    with pytest.raises(TypeError, match="not callable"):
        ex.options(lane="thread").submit(42)


def test_inline_coroutine_inside_a_running_loop_says_what_to_do(ex):
    async def main():
        with pytest.raises(LaneError, match="await ex.run"):
            ex.options(lane="inline").submit(_tasks.double_async, 1)

    asyncio.run(main())


@pytest.mark.parametrize("kwargs, error", [
    ({"processes": 0}, ValueError), ({"threads": -1}, ValueError),
    ({"threads": "8"}, TypeError), ({"hybrid_concurrency": 0}, ValueError),
    ({"lane": "nope"}, LaneError),
])
def test_bad_constructor_arguments(kwargs, error):
    with pytest.raises(error):
        multilane.Executor(**kwargs)


@pytest.mark.parametrize("lane", ALL_LANES)
def test_submit_after_shutdown_raises(lane, no_leaks):
    ex = multilane.Executor(processes=1, hybrid_processes=1)
    ex.options(lane=lane).submit(_fn_for(lane), 1).result(TIMEOUT)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.options(lane=lane).submit(_fn_for(lane), 1)


@pytest.mark.parametrize("lane", ["auto", "process", "thread", "inline", "hybrid"])
def test_every_keyword_of_a_call_reaches_the_function(ex, lane):
    """lane, timeout, retries, retry_on, chunksize: the function's own parameters, as in
    concurrent.futures; multilane's options are set on a view."""
    view = ex.options(lane=lane)
    keywords = {"lane": "mine", "timeout": 5, "retries": 2, "retry_on": "x", "chunksize": 3}
    assert view.submit(_tasks.keywords, 1, **keywords).result(TIMEOUT) == (
        (1,), keywords)
    assert ex.submit(_tasks.keywords, **keywords).result(TIMEOUT) == ((), keywords)


def test_run_passes_every_keyword_to_the_function(ex):
    async def main():
        return await ex.run(_tasks.keywords, timeout=1, lane="x")

    assert asyncio.run(main()) == ((), {"timeout": 1, "lane": "x"})


# ---------------------------------------------------------------- shutdown


def test_shutdown_waits_for_running_coroutines_and_threads(no_leaks):
    ex = multilane.Executor(threads=2)
    slow = [ex.submit(_tasks.double_async, i) for i in range(100)]
    threads = [ex.options(lane="thread").submit(_tasks.square, i) for i in range(100)]
    ex.shutdown(wait=True)
    assert all(f.done() for f in slow + threads)
    assert [f.result() for f in slow] == [2 * i for i in range(100)]


def test_shutdown_cancel_futures_cancels_queued_thread_calls(no_leaks, tmp_path):
    ex = multilane.Executor(threads=1)
    gate = tmp_path / "gate"
    running = ex.options(lane="thread").submit(_tasks.block_until_file, str(gate))
    queued = [ex.options(lane="thread").submit(_tasks.square, i) for i in range(10)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    gate.touch()
    ex.shutdown(wait=True)
    assert running.result() == os.getpid()


def test_the_same_options_give_the_same_view_and_views_derive_views(ex):
    view = ex.options(lane="thread", timeout=5)
    assert ex.options(lane="thread", timeout=5) is view
    derived = view.options(retries=2)
    assert (derived.lane, derived.timeout, derived.retries) == ("thread", 5.0, 2)
    assert (view.lane, view.timeout, view.retries) == ("thread", 5.0, 0)  # unchanged
    assert repr(derived) == "<multilane options lane='thread' timeout=5.0 retries=2>"
    with pytest.raises(TypeError, match="retry_on must be an exception type"):
        ex.options(retry_on=[ValueError])  # unhashable, and refused
    with pytest.raises(multilane.LaneError, match="unknown lane 'gpu'"):
        ex.options(lane="gpu")


def test_a_lane_slow_to_start_holds_up_no_other_and_one_started_after_close_is_stopped():
    # A cluster can take seconds to connect (the auto lane joins one on a thread of its
    # own): meanwhile another lane's first call must not wait, and if the executor shuts
    # down first, the lane is stopped as it comes up, never left running unseen.
    from multilane.lanes._registry import LaneKind, Lanes

    entered, release = threading.Event(), threading.Event()
    stopped: list[bool] = []

    class Slow:
        def shutdown(self, wait=True, cancel_futures=False):
            stopped.append(wait)

    def make_slow(lanes):
        entered.set()
        assert release.wait(TIMEOUT)
        return Slow()

    fast = object()
    lanes = Lanes({"slow": LaneKind(make_slow), "fast": LaneKind(lambda lanes: fast)},
                  default="fast", coroutine_lane="fast")
    outcome: list = []

    def start():
        try:
            outcome.append(lanes.lane("slow"))
        except RuntimeError as exc:
            outcome.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    assert entered.wait(TIMEOUT)
    assert lanes.lane("fast") is fast  # not held up by the slow start
    lanes.close()
    release.set()
    starter.join(TIMEOUT)
    assert isinstance(outcome[0], RuntimeError) and stopped == [True]
    assert lanes.get("slow") is None
