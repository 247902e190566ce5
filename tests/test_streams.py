"""Maps that read their input as they go (``buffersize``, Python 3.14's semantics) and maps
that yield results as they complete (``ordered=False``), on every lane."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading

import _tasks
import pytest
from conftest import TIMEOUT

import multilane

LANES = ["inline", "thread", "process", "async", "auto"]


@pytest.fixture(scope="module")
def ex():
    with multilane.Executor(processes=2, threads=8) as executor:
        yield executor


class Counted:
    """An endless input that counts the items taken from it."""

    def __init__(self) -> None:
        self.taken = 0

    def __iter__(self):
        for i in itertools.count():
            self.taken = i + 1
            yield i


async def _async_square(x):
    return x * x


def _fn(lane):
    return _async_square if lane == "async" else _tasks.square


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("buffersize", [1, 3, 64])
def test_a_bounded_map_reads_its_input_only_as_results_are_taken(ex, lane, buffersize):
    source = Counted()
    results = ex.options(lane=lane).map(_fn(lane), source, buffersize=buffersize)
    assert source.taken <= buffersize  # read at once: the first window, no more
    for i in range(200):
        assert next(results) == i * i
        # In flight or done and not yet taken: at most buffersize (and one more taken
        # from the generator that ended a batch).
        assert source.taken <= i + 1 + buffersize + 1
    results.close()
    taken = source.taken
    assert taken <= 200 + buffersize + 1


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("buffersize", [None, 2, 50])
def test_an_unordered_map_yields_every_result_once(ex, lane, buffersize):
    results = ex.options(lane=lane).map(_fn(lane), range(300), buffersize=buffersize,
                                        ordered=False)
    assert sorted(results) == [i * i for i in range(300)]


@pytest.mark.parametrize("chunksize", [None, 1, 7])
def test_bounded_and_unordered_maps_take_several_iterables_and_chunks(ex, chunksize):
    process = ex.options(lane="process")
    expected = [a + b for a, b in zip(range(500), itertools.count(7), strict=False)]
    assert list(process.map(_tasks.add, range(500), itertools.count(7), buffersize=40,
                            chunksize=chunksize)) == expected
    assert sorted(process.map(_tasks.add, range(500), itertools.count(7), buffersize=40,
                              chunksize=chunksize, ordered=False)) == expected


def test_one_slow_call_holds_back_no_result_of_an_unordered_map(ex):
    release = threading.Event()

    def first_waits(i):
        if i == 0:
            assert release.wait(TIMEOUT), "never released"
        return i

    results = ex.options(lane="thread").map(first_waits, range(20), buffersize=8,
                                            ordered=False)
    # The first 19 results come while the first call still waits: ordered, none could.
    seen = [next(results) for _ in range(19)]
    assert sorted(seen) == list(range(1, 20))
    release.set()
    assert list(results) == [0]


@pytest.mark.parametrize("ordered", [True, False])
def test_closing_a_bounded_map_early_cancels_the_rest_and_reads_no_more(ex, ordered):
    source = Counted()
    started = itertools.count()

    def counted(i):
        next(started)
        return i

    results = ex.options(lane="thread").map(counted, source, buffersize=10, ordered=ordered)
    assert next(results) in range(10)
    results.close()
    taken = source.taken
    ex.options(lane="thread").submit(int).result(TIMEOUT)  # the lane has moved on
    assert source.taken == taken <= 11
    assert next(started) <= taken + 1


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("chunksize", [1, 4])
def test_a_failed_call_ends_a_bounded_map_after_the_results_before_it(ex, ordered, chunksize):
    def fails_at_five(i):
        if i == 5:
            raise ValueError("five")
        return i

    results = ex.options(lane="process").map(fails_at_five, range(50), buffersize=8,
                                             chunksize=chunksize, ordered=ordered)
    seen = []
    with pytest.raises(ValueError, match="five"):
        for value in results:
            seen.append(value)
    if ordered:
        assert seen == [0, 1, 2, 3, 4]
    else:
        assert set(range(5)) <= set(seen) | set(range(5)) and 5 not in seen


@pytest.mark.parametrize("ordered", [True, False])
def test_a_bounded_map_raises_timeout_error_when_a_result_is_late(ex, ordered):
    release = threading.Event()
    results = ex.options(lane="thread").map(lambda _: release.wait(TIMEOUT), range(3),
                                            buffersize=2, timeout=0.05, ordered=ordered)
    try:
        with pytest.raises(TimeoutError):
            next(results)
    finally:
        release.set()


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                        ("2", TypeError)])
def test_a_bad_buffersize_is_refused_by_name(ex, bad, error):
    with pytest.raises(error, match="buffersize"):
        ex.map(_tasks.square, range(3), buffersize=bad)
    with pytest.raises(error, match="buffersize"):
        multilane.ProcessPoolExecutor.map(None, _tasks.square, range(3), buffersize=bad)


def test_the_drop_in_pool_counts_tasks_as_python_3_14_does():
    with multilane.ProcessPoolExecutor(max_workers=2) as pool:
        source = Counted()
        results = pool.map(_tasks.square, source, buffersize=3, chunksize=5)
        assert [next(results) for _ in range(40)] == [i * i for i in range(40)]
        # 3 tasks of 5 items in flight or done and not yet taken, at most.
        assert source.taken <= 40 + 15 + 1
        results.close()
        assert list(pool.map(_tasks.square, range(10), buffersize=2)) == [
            i * i for i in range(10)]


@pytest.mark.parametrize("lane", ["thread", "process", "async", "auto"])
@pytest.mark.parametrize("ordered", [True, False])
def test_bounded_and_unordered_maps_as_async_iterators(ex, lane, ordered):
    source = Counted()

    async def take():
        results = ex.options(lane=lane).map_async(_fn(lane), source, buffersize=16,
                                                  ordered=ordered)
        got = []
        async for value in results:
            got.append(value)
            assert source.taken <= len(got) + 16 + 1
            if len(got) == 100:
                break
        await results.aclose()
        return got

    got = asyncio.run(take())
    if ordered:
        assert got == [i * i for i in range(100)]
    else:
        assert len(set(got)) == 100


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_memory_stays_flat_over_a_million_items_of_an_endless_generator(ex):
    results = ex.options(lane="process").map(_tasks.tiny, itertools.count(),
                                              buffersize=10_000)
    for _ in range(10_000):
        next(results)
    before = _rss()
    for _ in range(990_000):
        next(results)
    after = _rss()
    results.close()
    assert after - before < 8 << 20, f"RSS grew {(after - before) >> 20} MiB"
