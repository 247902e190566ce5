"""ProcessPoolExecutor conformance: every behaviour runs on multilane and on the standard
library's executor as the oracle, swept over worker counts."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os

import _tasks
import pytest
from conftest import TIMEOUT

import multilane

EXECUTORS = {
    "multilane": multilane.ProcessPoolExecutor,
    "stdlib": cf.ProcessPoolExecutor,
}


@pytest.fixture(params=list(EXECUTORS))
def executor_type(request):
    """The executor under test. Leak checks apply to multilane only: the standard library's
    executor is the oracle for behaviour, and its teardown leaves threads and helper
    processes behind for a while (part of what multilane fixes)."""
    if request.param == "multilane":
        request.getfixturevalue("no_leaks")
    return EXECUTORS[request.param]


@pytest.fixture(params=[1, 2, 4])
def ex(request, executor_type):
    with executor_type(max_workers=request.param) as executor:
        yield executor


def test_submit_returns_a_standard_future(ex):
    future = ex.submit(_tasks.add, 2, b=3)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=TIMEOUT) == 5


def test_map_keeps_order(ex):
    assert list(ex.map(_tasks.square, range(100), timeout=TIMEOUT)) == [i * i for i in range(100)]


def test_map_several_iterables_stops_at_the_shortest(ex):
    assert list(ex.map(_tasks.add, [1, 2, 3], [10, 20], timeout=TIMEOUT)) == [11, 22]


@pytest.mark.parametrize("chunksize", [1, 3, 1000])
def test_map_with_chunksize(ex, chunksize):
    items = list(range(50))
    assert list(ex.map(_tasks.square, items, chunksize=chunksize)) == [i * i for i in items]


@pytest.mark.parametrize("make", [list, tuple, range, iter], ids=["list", "tuple", "range", "iter"])
@pytest.mark.parametrize("chunksize", [None, 1, 7])
def test_map_takes_its_items_when_called(ex, make, chunksize):
    """Lists, tuples and ranges are sliced per chunk, not copied first: the items are still
    the ones the sequence held when map() was called."""
    source = list(range(60))
    items = {list: source, range: range(60)}.get(make) or make(source)
    options = {} if chunksize is None else {"chunksize": chunksize}
    results = ex.map(_tasks.square, items, **options)
    source[:] = [-1] * 60  # the list passed in is this very object
    assert list(results) == [i * i for i in range(60)]


@pytest.mark.parametrize("chunksize", [1, 7, 100])
def test_a_failing_item_of_a_chunk_fails_alone(no_leaks, chunksize):
    # The standard library loses a whole chunk's results when one item fails; here the
    # items before it are yielded, exactly as with chunksize=1.
    with multilane.ProcessPoolExecutor(2) as ex:
        results = ex.map(_tasks.fail_on, range(100), [37] * 100, chunksize=chunksize)
        assert [next(results) for _ in range(37)] == list(range(37))
        with pytest.raises(ValueError, match="bad value 37") as caught:
            next(results)
        assert not hasattr(caught.value, "_multilane_done")  # the results were taken


def test_workers_share_the_cores_among_native_thread_pools(no_leaks, monkeypatch):
    # Each worker's BLAS or OpenMP would otherwise start a thread per core of the machine.
    monkeypatch.setenv("MKL_NUM_THREADS", "7")  # the user's own setting wins
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with multilane.ProcessPoolExecutor(2) as ex:
        seen = ex.submit(_tasks.environment, ["OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"])
        assert seen.result(TIMEOUT) == {
            "OPENBLAS_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // 2)),
            "MKL_NUM_THREADS": "7"}


def test_map_empty(ex):
    assert list(ex.map(_tasks.square, [])) == []


def test_map_rejects_bad_chunksize(ex):
    with pytest.raises(ValueError, match="chunksize must be >= 1."):
        ex.map(_tasks.square, [1], chunksize=0)


def test_map_raises_the_first_failing_items_exception_in_order(ex):
    results = ex.map(_tasks.raise_value_error, ["a", "b"], timeout=TIMEOUT)
    with pytest.raises(ValueError, match="^a$"):
        next(results)


def test_map_timeout(ex, tmp_path):
    gate = str(tmp_path / "gate")
    results = ex.map(_tasks.block_until_file, [gate], timeout=0.2)
    with pytest.raises(TimeoutError):  # the task blocks until the gate opens, below
        next(results)
    open(gate, "w").close()


def test_exception_carries_the_worker_traceback(ex):
    future = ex.submit(_tasks.raise_value_error, "boom")
    with pytest.raises(ValueError, match="^boom$") as info:
        future.result(timeout=TIMEOUT)
    assert "raise_value_error" in str(info.value.__cause__)
    assert 'raise ValueError(message)' in str(info.value.__cause__)


def test_custom_exception_keeps_its_attributes(ex):
    with pytest.raises(_tasks.CustomError) as info:
        ex.submit(_tasks.raise_custom, 42).result(timeout=TIMEOUT)
    assert info.value.code == 42


def test_submit_after_shutdown_raises(executor_type):
    executor = executor_type(max_workers=1)
    executor.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.submit(_tasks.identity, 1)


def test_shutdown_waits_for_submitted_work(executor_type):
    executor = executor_type(max_workers=2)
    futures = [executor.submit(_tasks.countdown, 10_000) for _ in range(20)]
    executor.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [0] * 20


def test_shutdown_cancel_futures(executor_type, tmp_path):
    gate = str(tmp_path / "gate")
    executor = executor_type(max_workers=1)
    blocker = executor.submit(_tasks.block_until_file, gate)
    queued = [executor.submit(_tasks.identity, i) for i in range(50)]
    executor.shutdown(wait=False, cancel_futures=True)
    open(gate, "w").close()
    blocker.result(timeout=TIMEOUT)
    executor.shutdown(wait=True)
    assert any(f.cancelled() for f in queued)
    for f in queued:
        assert f.cancelled() or f.result() in range(50)


def test_as_completed_and_wait(ex):
    futures = [ex.submit(_tasks.square, i) for i in range(20)]
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=TIMEOUT)) == sorted(
        i * i for i in range(20))
    done, not_done = cf.wait(futures, timeout=TIMEOUT)
    assert len(done) == 20 and not not_done


def test_cancelled_pending_future_is_seen_by_as_completed(executor_type, tmp_path):
    gate = str(tmp_path / "gate")
    with executor_type(max_workers=1) as executor:
        blocker = executor.submit(_tasks.block_until_file, gate)
        later = [executor.submit(_tasks.identity, i) for i in range(30)]
        cancelled = [f for f in later if f.cancel()]
        assert cancelled, "some queued futures should still be cancellable"
        open(gate, "w").close()
        done = list(cf.as_completed(later + [blocker], timeout=TIMEOUT))
        assert len(done) == 31


def test_asyncio_wrap_future_and_run_in_executor(ex):
    async def main():
        loop = asyncio.get_running_loop()
        a = await asyncio.wrap_future(ex.submit(_tasks.square, 7))
        b = await loop.run_in_executor(ex, _tasks.add, 1, 2)
        return a, b

    assert asyncio.run(main()) == (49, 3)


def test_initializer_runs_in_every_worker(executor_type):
    with executor_type(max_workers=2, initializer=_tasks.init_set_global,
                       initargs=("ready",)) as executor:
        assert set(executor.map(_tasks.read_global, range(8))) == {"ready"}


def test_initializer_failure_breaks_the_pool(executor_type):
    with executor_type(max_workers=1, initializer=_tasks.init_fail) as executor:
        future = executor.submit(_tasks.identity, 1)
        with pytest.raises(cf.process.BrokenProcessPool):
            future.result(timeout=TIMEOUT)
        with pytest.raises(cf.process.BrokenProcessPool) as info:
            executor.submit(_tasks.identity, 2)
        if executor_type is multilane.ProcessPoolExecutor:
            assert "initializer exploded" in repr(info.value.__cause__)


def test_max_tasks_per_child_replaces_workers(executor_type):
    with executor_type(max_workers=1, max_tasks_per_child=2) as executor:
        pids = [executor.submit(_tasks.get_pid).result(timeout=TIMEOUT) for _ in range(6)]
    assert len(set(pids)) == 3
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[4] == pids[5]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"max_workers": 0}, ValueError, "max_workers must be greater than 0"),
    ({"initializer": 3}, TypeError, "initializer must be a callable"),
    ({"max_tasks_per_child": "x"}, TypeError, "max_tasks_per_child must be an integer"),
    ({"max_tasks_per_child": 0}, ValueError, "max_tasks_per_child must be >= 1"),
])
def test_bad_constructor_arguments(executor_type, kwargs, error, message):
    with pytest.raises(error, match=message):
        executor_type(**kwargs)


def test_results_of_every_type_round_trip(ex):
    values = [None, 0, -1, 2**100, 1.5, "text", b"\x00bytes", [1, [2]], {"k": (1, 2)},
              {1, 2}, frozenset({3}), complex(1, 2), range(3), ValueError("as a value")]
    out = list(ex.map(_tasks.identity, values, timeout=TIMEOUT))
    assert out[:-1] == values[:-1]
    assert isinstance(out[-1], ValueError) and out[-1].args == ("as a value",)


def test_functions_are_sent_once_per_worker_then_named_by_id(no_leaks):
    with multilane.ProcessPoolExecutor(max_workers=2) as executor:
        futures = [executor.submit(_tasks.square, i) for i in range(200)]
        assert [f.result(timeout=TIMEOUT) for f in futures] == [i * i for i in range(200)]
        cache = executor._functions  # noqa: SLF001 -- what is tested
        assert len(cache) == 1
        fid, payload = cache.entry(_tasks.square)  # the cached entry, not a new one
        workers = list(executor._workers.values())  # noqa: SLF001
        assert all(w.functions == {fid} for w in workers if w.dispatched)
        # A module-level function travels by reference: a few bytes, not its code.
        assert len(payload) < 64


def test_starting_workers_leaves_the_parents_pages_writable(no_leaks):
    # A forked child shares the parent's pages copy-on-write; after it execs, each page of
    # the parent's stays write-protected until written, at the cost of a fault: 20,000
    # small NumPy arrays made after a pool start took 0.12 s instead of 0.07 s. Workers are
    # started with vfork, which copies and protects nothing.
    import resource

    pages = 8192  # 32 MiB of 4 KiB pages, each written once before
    heap = bytearray(pages * 4096)
    heap[::4096] = b"\x01" * pages
    with multilane.ProcessPoolExecutor(max_workers=2) as ex:
        assert sorted(ex.map(abs, [-1, -2])) == [1, 2]  # both workers started
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        heap[::4096] = b"\x02" * pages
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < pages // 4, f"{faults} page faults writing {pages} pages written before"
