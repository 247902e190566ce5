"""multilane.Pipeline: stages on their own lanes joined by bounded queues; order, fan-out,
filters, async sources and results, the error policies, push back, and closing."""

from __future__ import annotations

import asyncio
import itertools
import threading

import _tasks
import pytest
from conftest import TIMEOUT

import multilane
from multilane import _pipeline


@pytest.fixture
def ex(no_leaks):
    with multilane.Executor(processes=2, threads=8) as executor:
        yield executor


def _pairs(x):
    return [x, -x]


def _even(x):
    return x % 2 == 0


def _fails_at_five(x):
    if x == 5:
        raise ValueError("five")
    return x


async def _async_double(x):
    await asyncio.sleep(0)
    return 2 * x


def _expected(n):
    return [y for x in range(n) for y in _pairs(x * x) if _even(y)]


def _pipe(ex, **options):
    return (multilane.Pipeline(ex, **options)
            .map(_tasks.square, lane="process")
            .flat_map(_pairs, lane="thread", concurrency=4)
            .filter(_even))


def test_stages_on_their_lanes_keep_the_source_order(ex):
    assert list(_pipe(ex).run(range(2000))) == _expected(2000)
    assert list(_pipe(ex).run(iter(range(50)))) == _expected(50)  # a one-shot iterator


def test_unordered_runs_yield_every_result_once(ex):
    assert sorted(_pipe(ex, ordered=False).run(range(2000))) == sorted(_expected(2000))


def test_an_async_stage_and_async_sources_and_results(ex):
    pipe = multilane.Pipeline(ex).map(_async_double, lane="async").map(_tasks.square)

    async def source():
        for i in range(300):
            if i % 50 == 0:
                await asyncio.sleep(0)
            yield i

    expected = [(2 * i) ** 2 for i in range(300)]
    assert list(pipe.run(source())) == expected  # read on a loop of the source's thread

    async def main():
        got = [x async for x in pipe.run_async(source())]  # read on this loop
        got2 = [x async for x in pipe.run_async(range(300))]
        return got, got2

    assert asyncio.run(main()) == (expected, expected)


def test_a_failed_call_ends_the_run_after_the_results_before_it(ex):
    pipe = multilane.Pipeline(ex).map(_fails_at_five, lane="thread", concurrency=2)
    seen = []
    with pytest.raises(ValueError, match="five"):
        for value in pipe.run(range(100)):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]


def test_collected_errors_stand_beside_the_results_and_pass_later_stages(ex):
    pipe = (multilane.Pipeline(ex, errors="collect")
            .map(_fails_at_five, lane="process")
            .map(_tasks.square, lane="thread")
            .flat_map(_pairs))
    got = list(pipe.run(range(8)))
    (failed,) = [x for x in got if isinstance(x, multilane.Failed)]
    assert failed.item == 5 and isinstance(failed.error, ValueError)
    assert [x for x in got if not isinstance(x, multilane.Failed)] == [
        y for x in range(8) if x != 5 for y in _pairs(x * x)]


class _Source:
    """range(n) that flags an overrun if read past ``bound`` before ``release``."""

    def __init__(self, n, bound, release):
        self.n, self.bound, self.release = n, bound, release
        self.taken = 0
        self.overrun = threading.Event()

    def __iter__(self):
        for i in range(self.n):
            self.taken = i + 1
            if self.taken > self.bound and not self.release.is_set():
                self.overrun.set()
            yield i


def test_a_slow_stage_pushes_back_on_the_source(ex):
    release = threading.Event()

    def held(x):
        assert release.wait(TIMEOUT), "never released"
        return x

    buffer, stages = 2, 2
    # What the run can hold: each queue's batches, each stage's items at once, and the
    # source's batch in hand.
    bound = (stages + 1) * (buffer + 1) * _pipeline.MAX_BATCH + 4 + 8 + _pipeline.MAX_BATCH
    source = _Source(20_000, bound, release)
    pipe = (multilane.Pipeline(ex, buffer=buffer)
            .map(_tasks.square, lane="inline", concurrency=8)
            .map(held, lane="thread", concurrency=4))
    results = pipe.run(source)
    # The last stage holds its calls: the source is read no further than the run holds.
    assert not source.overrun.wait(1.0), f"read {source.taken} items with the last stage held"
    release.set()
    assert sum(1 for _ in results) == 20_000


def test_closing_a_run_mid_stream_stops_everything(ex):
    source = _Source(10**9, 10**9, threading.Event())
    release = threading.Event()

    def slow_after_ten(x):
        if x >= 10:
            release.wait(TIMEOUT)
        return x

    results = (multilane.Pipeline(ex).map(slow_after_ten, lane="thread", concurrency=4)
               .map(_tasks.square, lane="process").run(source))
    assert [next(results) for _ in range(10)] == [x * x for x in range(10)]
    results.close()  # the fixture fails the test if a thread of the run is left
    release.set()
    taken = source.taken
    assert source.taken == taken  # the source is read no more
    assert not [t for t in threading.enumerate() if t.name.startswith("multilane-pipeline")]


def test_a_pipeline_is_built_once_and_run_many_times(ex):
    pipe = _pipe(ex)
    assert [list(pipe.run(range(n))) for n in (3, 30)] == [_expected(3), _expected(30)]
    assert "flat _pairs[thread, 4]" in repr(pipe)
    assert list(multilane.Pipeline(ex).run(range(5))) == [0, 1, 2, 3, 4]  # no stage


@pytest.mark.parametrize("build, error", [
    (lambda p: p.map(42), TypeError),
    (lambda p: p.map(abs, concurrency=0), ValueError),
    (lambda p: p.flat_map(_async_double), TypeError),
    (lambda p: multilane.Pipeline(errors="ignore"), ValueError),
    (lambda p: multilane.Pipeline(buffer=0), ValueError),
])
def test_a_bad_stage_or_option_is_refused_by_name(build, error):
    with pytest.raises(error):
        build(multilane.Pipeline())


def test_fan_out_by_a_generator_function(ex):
    def words(line):
        yield from line.split()

    pipe = multilane.Pipeline(ex).flat_map(words, lane="thread").map(str.upper)
    assert list(pipe.run(["a b", "", "c d e"])) == ["A", "B", "C", "D", "E"]
    assert list(itertools.islice(pipe.run(itertools.repeat("x y")), 5)) == ["X", "Y"] * 2 + ["X"]


def test_progress_counts_the_results_and_each_stage_s_throughput(ex, capsys, monkeypatch):
    from multilane import _progress

    monkeypatch.setattr(_progress, "_tqdm", lambda *_: None)  # the plain line, here
    monkeypatch.setattr(_progress, "_rich", lambda *_: None)
    monkeypatch.setattr(_progress, "DELAY_S", 0.0)
    pipe = (multilane.Pipeline(ex, progress="always").map(_tasks.square, lane="process")
            .flat_map(_pairs, lane="thread"))
    assert len(list(pipe.run(range(500)))) == 1000
    last = capsys.readouterr().err.rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("pipeline: 1000 items, "), last  # fanned out: no total known
    assert "(square " in last and "/s, _pairs " in last, last


def test_a_failing_source_ends_the_run_after_the_items_before_it(ex):
    def source():
        yield from range(5)
        raise OSError("the source broke")

    async def async_source():
        for i in range(5):
            yield i
        raise OSError("the async source broke")

    pipe = multilane.Pipeline(ex).map(_tasks.square, lane="thread")
    seen = []
    with pytest.raises(OSError, match="the source broke"):
        for value in pipe.run(source()):
            seen.append(value)
    assert seen == [0, 1, 4, 9, 16]

    async def main():
        got = []
        with pytest.raises(OSError, match="the async source broke"):
            async for value in pipe.run_async(async_source()):
                got.append(value)
        return got

    assert asyncio.run(main()) == [0, 1, 4, 9, 16]
