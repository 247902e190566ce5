"""Per-task timeouts, forced cancels, retries, recycling, crash reports and fault injection."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import _tasks
import pytest
from conftest import TIMEOUT, children, gone_within, wait_for_file, wait_until

import multilane
from multilane import TaskTimeout, WorkerCrashed


@pytest.fixture
def ex(no_leaks):
    # Unnamed lanes go to processes here (the default, "auto", might run them in-process).
    with multilane.Executor(processes=2, threads=4, hybrid_processes=1,
                            hybrid_concurrency=4, lane="process") as executor:
        yield executor


def _pids(ex, lane="process"):
    return set(ex.statistics()[lane].worker_pids)


# ---------------------------------------------------------------- timeouts


def test_a_process_task_past_its_timeout_is_stopped_and_its_worker_replaced(ex):
    ex.submit(_tasks.identity, 0).result(TIMEOUT)
    before = _pids(ex)
    slow = ex.options(timeout=0.3).submit(_tasks.countdown, 10**10)  # hours, uncut
    queued = [ex.submit(_tasks.square, i) for i in range(20)]
    with pytest.raises(TaskTimeout, match=r"countdown\(\) ran longer than its timeout of 0.3 s"):
        slow.result(TIMEOUT)
    assert [f.result(TIMEOUT) for f in queued] == [i * i for i in range(20)]
    assert isinstance(slow.exception(), TimeoutError)
    assert _pids(ex) != before and ex.statistics()["process"].workers_killed == 1
    assert ex.statistics()["process"].workers_lost == 0


def test_the_timeout_counts_from_when_the_task_starts(no_leaks):
    with multilane.Executor(processes=1, lane="process") as ex:
        first = ex.submit(_tasks.sleep_then, 0.3, "first")
        second = ex.options(timeout=0.5).submit(_tasks.sleep_then, 0.2, "second")  # 0.3 s queued
        assert (first.result(TIMEOUT), second.result(TIMEOUT)) == ("first", "second")


def test_map_task_timeout_fails_only_the_slow_items(ex):
    results = ex.options(timeout=0.5).map(_tasks.sleep_then, [0.0, 30.0, 0.0], ["a", "b", "c"])
    assert next(results) == "a"
    with pytest.raises(TaskTimeout):
        next(results)
    assert ex.submit(_tasks.identity, "still works").result(TIMEOUT) == "still works"


def test_a_hybrid_timeout_fails_the_calls_beside_it_as_crashed(ex, tmp_path):
    never = str(tmp_path / "never")
    beside = ex.options(lane="hybrid").submit(_tasks.block_until_file, never)
    slow = ex.options(lane="hybrid", timeout=0.3).submit(_tasks.countdown, 10**10)
    with pytest.raises(TaskTimeout):
        slow.result(TIMEOUT)
    with pytest.raises(WorkerCrashed, match="by the pool, to stop another call"):
        beside.result(TIMEOUT)


def test_a_thread_past_its_timeout_fails_its_future_and_runs_on(ex, tmp_path):
    gate = tmp_path / "gate"
    future = ex.options(lane="thread", timeout=0.2).submit(_tasks.block_until_file, str(gate))
    with pytest.raises(TaskTimeout, match="a thread cannot be stopped, so it runs on"):
        future.result(TIMEOUT)
    gate.touch()  # the thread finishes later; its result is dropped


def test_a_coroutine_past_its_timeout_is_cancelled(ex):
    with pytest.raises(TaskTimeout, match="it was cancelled"):
        ex.options(timeout=0.2).submit(_tasks.sleep_async, 30).result(TIMEOUT)
    with pytest.raises(TimeoutError, match="the coroutine's own timeout") as info:
        ex.options(timeout=5).submit(_tasks.raise_timeout_error).result(TIMEOUT)
    assert not isinstance(info.value, TaskTimeout)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), ("1", ValueError)])
def test_bad_timeouts_are_refused(ex, bad, error):
    with pytest.raises(error, match="timeout must be a positive number"):
        ex.options(timeout=bad)


def test_inline_cannot_time_out(ex):
    with pytest.raises(multilane.LaneError, match="cannot be stopped"):
        ex.options(lane="inline", timeout=1).submit(_tasks.identity, 1)


# ---------------------------------------------------------------- forced cancel


def test_force_cancel_stops_a_running_process_task(ex, tmp_path):
    path = str(tmp_path / "pid")
    running = ex.submit(_tasks.announce_and_block, path)
    pid = wait_for_file(path)
    assert not running.cancel()  # the standard meaning: too late
    assert ex.cancel(running, force=True)
    assert running.cancelled()
    with pytest.raises(multilane.CancelledError):
        running.result(TIMEOUT)
    assert gone_within(pid)  # it blocks for ever unless killed
    assert ex.submit(_tasks.square, 3).result(TIMEOUT) == 9


def test_force_cancel_a_coroutine_and_not_a_thread(ex, tmp_path):
    coroutine = ex.submit(_tasks.sleep_async, 30)
    wait_until(coroutine.running, message="the coroutine never started")
    assert ex.cancel(coroutine, force=True) and coroutine.cancelled()
    gate = tmp_path / "gate"
    thread = ex.options(lane="thread").submit(_tasks.block_until_file, str(gate))
    wait_until(thread.running, message="the thread call never started")
    assert not ex.cancel(thread, force=True)  # a thread cannot be stopped
    gate.touch()
    assert thread.result(TIMEOUT) == os.getpid()


# ---------------------------------------------------------------- retries


def test_a_crashed_task_is_retried(ex, tmp_path):
    marker = str(tmp_path / "crashed")
    assert ex.options(retries=1).submit(_tasks.crash_once, marker, "done").result(TIMEOUT) == "done"
    assert ex.statistics()["process"].crashed == 0


def test_without_retries_a_crash_fails_the_task(ex, tmp_path):
    with pytest.raises(WorkerCrashed, match="SIGKILL"):
        ex.submit(_tasks.crash_once, str(tmp_path / "crashed"), "done").result(TIMEOUT)


@pytest.mark.parametrize("lane", ["process", "thread", "inline"])
def test_retry_on_reruns_only_the_named_exceptions(ex, tmp_path, lane):
    marker = str(tmp_path / "failed")
    retry_value = ex.options(lane=lane, retries=1, retry_on=ValueError)
    assert retry_value.submit(_tasks.fail_once, marker, 7).result(TIMEOUT) == 7
    os.remove(marker)
    with pytest.raises(ValueError, match="first attempt"):
        retry_key = ex.options(lane=lane, retries=1, retry_on=KeyError)
        retry_key.submit(_tasks.fail_once, marker, 7).result(TIMEOUT)
    os.remove(marker)
    with pytest.raises(ValueError, match="first attempt"):  # retries=1 but no retry_on
        ex.options(lane=lane, retries=1).submit(_tasks.fail_once, marker, 7).result(TIMEOUT)


def test_bad_retry_options_are_refused(ex):
    with pytest.raises(ValueError, match="retries"):
        ex.options(retries=-1).submit(_tasks.identity, 1)
    with pytest.raises(TypeError, match="retry_on"):
        ex.options(retries=1, retry_on="ValueError").submit(_tasks.identity, 1)


# ---------------------------------------------------------------- recycling


def test_a_worker_over_its_memory_limit_is_replaced_without_losing_work(no_leaks):
    with multilane.ProcessPoolExecutor(1, max_memory_per_child=200 * 2**20) as ex:
        first = ex.submit(_tasks.allocate_and_keep, 300).result(TIMEOUT)
        queued = [ex.submit(_tasks.get_pid) for _ in range(10)]
        pids = {f.result(TIMEOUT) for f in queued}
        assert first not in pids and len(pids) == 1
        assert ex.statistics().workers_recycled == 1
        assert ex.statistics().workers_lost == 0


def test_bad_memory_limit_is_refused():
    with pytest.raises(ValueError, match="max_memory_per_child"):
        multilane.ProcessPoolExecutor(1, max_memory_per_child=0)


# ---------------------------------------------------------------- crash reports


@pytest.mark.parametrize("sig, cause", [
    (signal.SIGKILL, "OOM killer"), (signal.SIGSEGV, "segmentation fault"),
    (signal.SIGTERM, "terminate"), (signal.SIGABRT, "abort"),
])
def test_a_killed_worker_is_reported_with_its_signal_and_likely_cause(ex, sig, cause):
    with pytest.raises(WorkerCrashed, match=f"{signal.Signals(sig).name}.*{cause}"):
        ex.submit(_tasks.kill_self, sig).result(TIMEOUT)


# ---------------------------------------------------------------- fault injection


@pytest.mark.heavy  # a fault soak (workers killed over seconds): about the OS, not Python
@pytest.mark.parametrize("retries", [0, 20])
def test_killing_workers_during_a_map_loses_and_duplicates_nothing(no_leaks, retries):
    """20 random workers are SIGKILLed while 20,000 short tasks run. With as many retries
    as kills every task completes exactly once with its own result (one retry is not
    enough: a loaded machine once let a retried task be killed again in its new worker);
    without, each one completes or fails with WorkerCrashed. No result is lost,
    duplicated or given to another task."""
    n, kills = 20_000, 20
    with multilane.Executor(processes=2, lane="process") as ex:
        retrying = ex.options(retries=retries)
        futures = [retrying.submit(_tasks.sleep_then, 0.0002, i) for i in range(n)]
        done_killing = threading.Event()

        pool = ex._lanes.get("process").pool  # noqa: SLF001 -- which workers are ready

        def killer():
            rng = random.Random(1)
            for _ in range(kills):
                # Workers that run tasks: one killed while it starts is another fault
                # (ten such deaths in a row break the pool, by design), and on a slow
                # machine a worker took longer to start than the 50 ms between kills.
                with pool._lock:  # noqa: SLF001
                    pids = [w.pid for w in pool._workers.values() if w.ready]  # noqa: SLF001
                if pids:
                    try:
                        os.kill(rng.choice(pids), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)  # spread the kills over the run
            done_killing.set()

        thread = threading.Thread(target=killer)
        thread.start()
        outcomes = []
        for i, future in enumerate(futures):
            try:
                outcomes.append(future.result(TIMEOUT) == i)
            except WorkerCrashed:
                outcomes.append(None)
        thread.join(TIMEOUT)
        assert done_killing.is_set()
    assert len(outcomes) == n and False not in outcomes  # nothing given to the wrong task
    crashed = outcomes.count(None)
    if retries:
        assert crashed == 0
    else:
        assert crashed <= kills
    assert children() == set()


# ---------------------------------------------------------------- soak (short)


@pytest.mark.heavy
def test_soak_tiny_tasks_and_pool_cycles_leave_nothing_behind(no_leaks):
    fds = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    with multilane.ProcessPoolExecutor(2) as ex:
        for _ in range(5):
            assert sum(ex.map(_tasks.identity, range(20_000), chunksize=1)) == sum(range(20_000))
    for _ in range(20):
        with multilane.Executor(processes=1, threads=2, lane="process") as ex:
            ex.submit(_tasks.identity, 1).result(TIMEOUT)
            ex.options(lane="thread").submit(_tasks.identity, 1).result(TIMEOUT)
            ex.submit(_tasks.double_async, 1).result(TIMEOUT)
    assert len(os.listdir("/proc/self/fd")) == fds
    wait_until(lambda: threading.active_count() == threads, message="threads were left")
    assert children() == set()


