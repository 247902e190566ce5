"""The auto lane: it measures, routes each function to its fastest lane and explains why."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections import deque

import _tasks
import pytest
from conftest import TIMEOUT, wait_until

import multilane
from multilane._future import LaneFuture
from multilane.auto import _lane as auto_lane
from multilane.auto import _maps as auto_maps
from multilane.auto import _params as params
from multilane.auto import _probes as probes
from multilane.auto import _profile as profile_module
from multilane.auto._segments import Segment

MANY_CORES = (os.cpu_count() or 1) >= 2


@pytest.fixture
def ex(no_leaks):
    with multilane.Executor(processes=2, threads=8) as executor:
        yield executor


def _patch(monkeypatch, name, replacement):
    """Replaces a probe function where the auto lane calls it: in the probes' module (a
    solo probe on a thread), the lane's (a pair) and the maps' (a probe run in a map's
    caller)."""
    for module in (probes, auto_lane, auto_maps):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, replacement)


def _lane(ex, fn):
    (profile,) = ex.explain(fn).profiles
    return profile["lane"]


def _gil_released_lanes(profile: dict) -> set[str]:
    """Where code that releases the GIL may go: threads; or inline too if a pair ran on two
    cores and gained nothing (on a machine busy elsewhere, the cores it had were slow)."""
    return {"thread", "inline"} if "share some other limit" in profile["verdict"] else {
        "thread"}


def test_tiny_calls_run_inline(ex):
    assert list(ex.map(_tasks.tiny, range(500))) == [i + 1 for i in range(500)]
    assert _lane(ex, _tasks.tiny) == "inline"


def test_waiting_calls_go_to_threads(ex):
    assert list(ex.map(_tasks.wait_a_little, [0.005] * 40)) == [0.005] * 40
    assert _lane(ex, _tasks.wait_a_little) == "thread"
    assert "mostly waiting" in str(ex.explain(_tasks.wait_a_little))


def test_code_that_releases_the_gil_goes_to_threads(ex):
    data = b"x" * (8 << 20)  # ~10 ms of hashing with the GIL released
    assert len(set(ex.map(_tasks.digest, [data] * 12))) == 1
    (profile,) = ex.explain(_tasks.digest).profiles
    assert profile["lane"] in _gil_released_lanes(profile), profile
    if profile["lane"] == "thread":
        assert "without holding the GIL" in str(ex.explain(_tasks.digest))


def _stretched_pairs(monkeypatch, wall_by: float, cpu_by: float) -> None:
    """Each call of a pair probe takes ``wall_by`` and ``cpu_by`` times its CPU time as
    its wall and CPU times (from the same start: the two as one pair), and keeps its
    core; a solo call's wall time is its CPU time. The test shapes the evidence the
    pair is judged against, not the machine's load. (Shaped from the wall time, a real
    pair sharing a core with another process was 1.3x slower than two in a row; a solo
    slowed by a busy machine made a pair look faster than two in a row, in clean-clone
    runs.)"""
    def stretched(gate, fn, args, kwargs):
        result, _, cpu, start, _, crowded = timed_pair_probe(gate, fn, args, kwargs)
        return result, cpu * wall_by, cpu * cpu_by, start, False, crowded

    def solo_on_its_core(fn, args, kwargs, *how):
        result, _, cpu, start, _, crowded = timed_probe(fn, args, kwargs, *how)
        return result, cpu, cpu, start, False, crowded

    timed_probe = probes.timed_probe
    _patch(monkeypatch, "timed_probe", solo_on_its_core)

    timed_pair_probe = probes.timed_pair_probe
    _patch(monkeypatch, "timed_pair_probe", stretched)


def test_code_free_of_the_gil_that_gains_nothing_in_pairs_stays_inline(ex, monkeypatch):
    # Two 64 MB NumPy sums at once, on two cores, run no faster than one after the other
    # (memory-bound): processes would share that limit, after a copy. No process probe.
    _stretched_pairs(monkeypatch, 4.0, 4.0)  # each 4x its time alone: slower than a row
    data = b"x" * (8 << 20)  # ~5 ms: GIL-wait probes at 0.25 ms and 2.25 ms into each solo
    assert len(set(ex.map(_tasks.digest, [data] * 12))) == 1
    (profile,) = ex.explain(_tasks.digest).profiles
    if profile["gil"] != "released":
        pytest.skip(f"the GIL-wait probes did not settle here: {profile}")
    assert profile["lane"] == "inline" and "share some other limit" in profile["verdict"], profile
    assert profile["transport_s"] is None, profile  # no process probe


@pytest.mark.parametrize("robbed", [True, False])
def test_pairs_that_never_ran_on_two_free_cores_leave_it_to_the_gil_probes(ex, monkeypatch,
                                                                          robbed):
    # Pairs that used one core between them: because another task of the machine had the
    # other (robbed), the GIL-wait probes stand and it goes to threads; on free cores, that
    # says the GIL is held part of the time, and the process probe is next.
    _stretched_pairs(monkeypatch, 1.0, 0.5)
    monkeypatch.setattr(probes.PairGate, "contended", lambda self, span: robbed)
    data = b"x" * (8 << 20)
    assert len(set(ex.map(_tasks.digest, [data] * 16))) == 1
    (profile,) = ex.explain(_tasks.digest).profiles
    if profile["gil"] != "released" or profile["gil_probes"][1] < 2:  # two, to be trusted
        pytest.skip(f"the GIL-wait probes did not settle here: {profile}")
    if robbed:
        assert profile["lane"] == "thread" and "no pair could run" in profile["verdict"], repr(
            profile)
        assert profile["transport_s"] is None, profile
    else:
        # Not threads: processes are next, unless shipping 8 MB there costs more than the
        # call (then no process probe). The map's calls may all have run here while the
        # workers loaded the function; the next call then carries the process probe.
        def judged():
            ex.submit(_tasks.digest, data).result(TIMEOUT)
            found = ex.explain(_tasks.digest).profiles[0]
            return found if (found["transport_s"] is not None
                             or "costs more than the call" in found["verdict"]) else None

        assert wait_until(judged, message="neither probed nor ruled out")["lane"] != "thread"


@pytest.mark.skipif(not MANY_CORES, reason="a process only pays off with a second core")
def test_python_work_holding_the_gil_goes_to_processes(ex):
    # Ready workers: 24 calls of 10 ms do not pay for starting them (PROCESS_START_S), and
    # under load they may not be ready before the map ends (inline is then right).
    ex.options(lane="process").submit(_tasks.identity, 0).result(TIMEOUT)
    n = 300_000  # ~10 ms of pure Python
    assert list(ex.map(_tasks.python_work, [n] * 24)) == [_tasks.python_work(n)] * 24
    explained = ex.explain(_tasks.python_work)
    assert explained.profiles[0]["lane"] == "process", f"{explained}\n{explained.profiles!r}"
    evidence = explained.profiles[0]
    # Estimated there from the machine's round trip (a call this long needs no process
    # probe: KNOWN_TRIPS), or from a probe's.
    assert evidence["estimated_s"]["process"] < evidence["solo_wall_s"], explained
    assert evidence["transport_s"] is None or evidence["transport_s"] < evidence["solo_wall_s"]


@pytest.mark.skipif(not MANY_CORES, reason="a process only pays off with a second core")
def test_a_slow_first_call_in_a_worker_is_looked_at_again(ex, tmp_path):
    # One process probe that took 4x the call's time here is not the measure of a worker:
    # a second one is, and the faster of the two counts.
    n, marker = 300_000, str(tmp_path / "first")
    ex.options(lane="process").submit(_tasks.identity, 0).result(TIMEOUT)  # not a cold start
    results = list(ex.map(_tasks.slow_in_the_first_worker_call, [n] * 24, [marker] * 24,
                          [os.getpid()] * 24))
    assert results == [_tasks.python_work(n)] * 24
    explained = ex.explain(_tasks.slow_in_the_first_worker_call)
    evidence = f"{explained}\n{explained.profiles!r}"
    assert os.path.exists(marker), evidence  # the outlier did happen, in a worker
    assert explained.profiles[0]["lane"] == "process", evidence


def test_sending_is_the_serial_part_of_the_transport():
    p = profile_module.Profile("f", 0, False)
    assert p.process_estimate(2, 0.010) is None  # no process probe yet
    p.saw_process((0.012, 0.001), 0.008)  # 4 ms of transport, 1 ms of it sending
    p.saw_process((0.030, 0.002), 0.020)  # slower everywhere: the first one counts
    assert p.process_work == 0.008 and p.transport == pytest.approx(0.004)
    # The worker's part (work, unpickling, the reply) overlaps across 2 processes.
    assert p.process_estimate(2, 0.010) == pytest.approx((0.008 + 0.003) / 2 + 0.001)
    p.saw_process(None, 0.005)  # a call that started the workers: work only
    assert p.process_work == 0.005 and p.transport == pytest.approx(0.004)


@pytest.mark.parametrize("threads_up", [True, False])
def test_a_map_whose_first_call_waits_goes_on_without_it(ex, threads_up):
    # The first call of a blocking map runs in its caller as a probe. While it waits, a
    # watcher sends the rest to threads: here the first call waits for one of the others,
    # and would wait its full 10 s without them.
    if threads_up:
        ex.options(lane="thread").submit(_tasks.identity, 0).result(TIMEOUT)
    _tasks.company.clear()
    assert list(ex.map(_tasks.wait_for_company, range(20))) == [True] * 20
    (profile,) = ex.explain(_tasks.wait_for_company).profiles
    # Decided once its first call ends ("mostly waiting"), or before, from the calls
    # behind it, when the machine is slow to start them ("waiting (seen while ...)").
    assert profile["lane"] == "thread" and "waiting" in profile["verdict"], profile


@pytest.mark.parametrize("submitted", [False, True])
def test_waiting_calls_run_many_at_once(no_leaks, submitted):
    # The thread lane has min(32, cores + 4) threads of its own; calls that mostly wait
    # may have more at once (here the model allows ~29 for 60 waits of 20 ms).
    _tasks.most_at_once(reset=True)
    with multilane.Executor(processes=2) as ex:
        if submitted:
            futures = [ex.submit(_tasks.wait_counted, 0.02) for _ in range(60)]
            assert [f.result(TIMEOUT) for f in futures] == [0.02] * 60
        else:
            assert list(ex.map(_tasks.wait_counted, [0.02] * 60)) == [0.02] * 60
        (profile,) = ex.explain(_tasks.wait_counted).profiles
    assert profile["lane"] == "thread" and profile["concurrency"] > 12, profile
    assert _tasks.most_at_once() > 12


def test_waiting_calls_stay_within_the_threads_given(no_leaks):
    _tasks.most_at_once(reset=True)
    with multilane.Executor(processes=2, threads=5) as ex:
        assert list(ex.map(_tasks.wait_counted, [0.02] * 60)) == [0.02] * 60
        (profile,) = ex.explain(_tasks.wait_counted).profiles
        assert ex.statistics()["thread"].max_threads == 5
    assert profile["lane"] == "thread" and profile["concurrency"] <= 5, profile
    assert _tasks.most_at_once() <= 6  # five threads, and the map's first call in its caller


def test_submitted_calls_behind_a_waiting_first_call_go_on_without_it(ex):
    # As a map's (above): the first call waits for one of the calls behind it to start,
    # and would wait its full 10 s if they waited for its end.
    ex.options(lane="thread").submit(_tasks.identity, 0).result(TIMEOUT)
    _tasks.company.clear()
    futures = [ex.submit(_tasks.wait_for_company, i) for i in range(20)]
    assert [f.result(TIMEOUT) for f in futures] == [True] * 20
    (profile,) = ex.explain(_tasks.wait_for_company).profiles
    # Decided once its first call ends ("mostly waiting"), or before, from the calls
    # behind it, when the machine is slow to start them ("waiting (seen while ...)").
    assert profile["lane"] == "thread" and "waiting" in profile["verdict"], profile


def test_tiny_calls_with_many_bytes_stay_here(ex):
    # 20,000 calls decided inline hold ~10 ms of work, enough for process chunks, but each
    # would ship 60 KB there: more than its work, on any number of cores.
    data = b"x" * 60_000
    assert set(ex.map(_tasks.get_pid, [data] * 20_000)) == {os.getpid()}
    assert _lane(ex, _tasks.get_pid) == "inline"


def test_a_first_call_that_computes_after_waiting_is_judged_again(ex):
    ex.options(lane="thread").submit(_tasks.identity, 0).result(TIMEOUT)
    _tasks.company.clear()
    n = 3_000_000  # ~150 ms of work after the wait: not a waiting function after all
    assert list(ex.map(_tasks.wait_for_company, range(20), [n] * 20)) == [True] * 20
    (profile,) = ex.explain(_tasks.wait_for_company).profiles
    assert profile["verdict"] == "exploring: its first call computed"


def test_coroutine_functions_go_to_the_async_lane(ex):
    assert list(ex.map(_tasks.double_async, range(10))) == [2 * i for i in range(10)]
    assert _lane(ex, _tasks.double_async) == "async"


def test_the_decision_settles_within_the_first_2_percent_of_a_map(ex):
    n = 10_000
    assert list(ex.map(_tasks.tiny, range(n))) == [i + 1 for i in range(n)]
    (profile,) = ex.explain(_tasks.tiny).profiles
    assert profile["calls"] == n
    exploring = sum(count for lane, (count, _, _) in profile["lanes"].items()
                    if lane != profile["lane"])
    assert exploring <= n * 0.02


def test_argument_size_gets_its_own_judgement(ex):
    # 16 MiB: ~10 ms of hashing. A 2.5 ms one (4 MiB) was at the mercy of a 2 ms burst of
    # another thread's work, and sometimes went inline.
    small, large = b"x" * 100, b"x" * (16 << 20)
    list(ex.map(_tasks.digest, [small] * 200))
    list(ex.map(_tasks.digest, [large] * 12))
    lanes = {p["argument_bytes"]: p["lane"] for p in ex.explain(_tasks.digest).profiles}
    assert len(lanes) == 2
    assert lanes[0] == "inline"  # hashing 100 bytes is cheaper than any hand-over
    (large,) = [p for p in ex.explain(_tasks.digest).profiles if p["argument_bytes"]]
    assert large["lane"] in _gil_released_lanes(large), repr(large)  # hashing releases the GIL


def test_a_drifting_function_is_judged_again(ex, tmp_path):
    path = str(tmp_path / "slow")
    for _ in range(5):  # (a loaded machine can make a first call look slow: it explores on)
        list(ex.map(_tasks.slow_when_file, [path] * 300, range(300)))
        if _lane(ex, _tasks.slow_when_file) is not None:
            break
    assert _lane(ex, _tasks.slow_when_file) == "inline", str(ex.explain(_tasks.slow_when_file))
    open(path, "w").close()
    for _ in range(5):  # the calls keep flowing while it explores again
        list(ex.map(_tasks.slow_when_file, [path] * 20, range(20)))
        if _lane(ex, _tasks.slow_when_file) == "thread":
            break
    assert _lane(ex, _tasks.slow_when_file) == "thread"


def _decided_waiting_on_threads() -> profile_module.Profile:
    p = profile_module.Profile("f", 0, False)
    p.solo = (0.005, 0.002)  # 2 ms of CPU in 5 ms: mostly waiting
    p.decide("thread", "mostly waiting", 0.005)
    return p


def test_a_waiting_function_slowed_by_its_neighbours_on_threads_is_not_judged_again():
    # Sleeping 2 ms, then computing 2 ms holding the GIL, among 32 threads: 25 ms a call.
    # That is the other threads' doing, not a change in the function.
    p = _decided_waiting_on_threads()
    for _ in range(100):
        p.record("thread", 0.025, 0.002)
        assert not p.drifted()
    assert p.lane == "thread" and not p.exploring


def test_a_waiting_function_that_computes_now_or_waits_no_more_is_judged_again():
    rising = _decided_waiting_on_threads()
    for _ in range(100):
        rising.record("thread", 0.030, 0.012)  # 12 ms of CPU a call now
        if rising.drifted():
            break
    assert rising.exploring and "CPU time per call moved" in rising.verdict
    falling = _decided_waiting_on_threads()
    for _ in range(100):
        falling.record("thread", 0.0005, 0.0004)  # a fall shows in wall time
        if falling.drifted():
            break
    assert falling.exploring and "work per call moved" in falling.verdict


def test_a_computing_function_decided_inline_whose_calls_now_wait_is_judged_again():
    # A decision lasts (in the store, across runs): one taken on a misjudged call, or
    # before the function's calls began to wait, must not keep waits in line for ever.
    def decided_inline() -> profile_module.Profile:
        p = profile_module.Profile("f", 0, False)
        p.solo = (0.002, 0.0019)  # computing
        p.decide("inline", "computing, no faster on 2 processes", 0.002)
        return p

    waiting = decided_inline()
    for _ in range(100):
        waiting.record("inline", 0.002, 0.0001)  # as long, but waiting now
        if waiting.drifted():
            break
    assert waiting.exploring and "now mostly wait" in waiting.verdict
    computing = decided_inline()
    for _ in range(100):
        computing.record("inline", 0.0015, 0.0014)  # a little faster: still at home here
        assert not computing.drifted()
    tiny = decided_inline()
    tiny.decide("inline", "tiny: shipping it costs more", 2e-6)
    for _ in range(100):
        tiny.record("inline", 4e-6, 1e-6)  # a tiny wait: nothing for threads to overlap
        assert not tiny.drifted()


@pytest.mark.parametrize("stolen, lane", [(True, "inline"), (False, "thread")])
def test_a_core_stolen_during_a_probe_is_not_taken_for_waiting(ex, monkeypatch, stolen, lane):
    # On a loaded machine a probe can wait for a core: 5 ms of wall time for 3 µs of work.
    # Only a thread that blocked (I/O, sleep, a lock) was waiting; one that never did lost
    # its core, and the auto lane judges the work, not the gap.
    def slowed(fn, args, kwargs, *how):
        result, wall, cpu, start, _, crowded = timed_probe(fn, args, kwargs, *how)
        return result, wall + 0.005, cpu, start, stolen, crowded

    timed_probe = probes.timed_probe
    _patch(monkeypatch, "timed_probe", slowed)
    assert list(ex.map(_tasks.tiny, range(50))) == [i + 1 for i in range(50)]
    assert _lane(ex, _tasks.tiny) == lane


@pytest.mark.skipif(not MANY_CORES, reason="crowding needs other cores")
def test_a_call_that_keeps_every_core_busy_is_never_run_in_pairs(ex, monkeypatch):
    # NumPy's BLAS uses every core for one matrix product; two at once on threads ran 10x
    # slower each. A solo probe whose own threads kept the other cores busy skips the pair.
    def crowding(fn, args, kwargs, *how):
        return (*timed_probe(fn, args, kwargs, *how)[:5], True)

    timed_probe = probes.timed_probe
    _patch(monkeypatch, "timed_probe", crowding)
    n = 300_000
    assert list(ex.map(_tasks.python_work, [n] * 24)) == [_tasks.python_work(n)] * 24
    (profile,) = ex._lanes.get("auto")._profiles.values()
    assert profile.pair_tries == 0 and profile.process_probes == 0  # nor sent to a process
    assert (profile.lane, profile.verdict) == ("inline", "computing on every core already")


def test_other_threads_cpu_is_read_exactly_while_they_run():
    # The process clock counts another thread's running time only at a scheduler tick: a
    # BLAS thread's 1.5 ms read 0 in most matrix products. Its own clock is exact.
    import hashlib

    go, done, leave = threading.Event(), threading.Event(), threading.Event()
    spent = []

    def helper():
        go.wait(TIMEOUT)
        start = time.thread_time()
        hashlib.sha256(b"x" * (16 << 20)).digest()  # releases the GIL: on a core of its own
        spent.append(time.thread_time() - start)
        done.set()
        leave.wait(TIMEOUT)  # alive at the second reading, as a BLAS thread is

    thread = threading.Thread(target=helper)
    thread.start()
    try:
        before = probes._others_cpu()
        go.set()
        assert done.wait(TIMEOUT)
        after = probes._others_cpu()
    finally:
        leave.set()
        thread.join(TIMEOUT)
    assert spent[0] > 0.001
    assert spent[0] - 1e-4 <= after - before <= spent[0] + 0.5


def test_a_second_solo_of_a_computing_call_reads_the_other_threads_exactly(ex, monkeypatch):
    # Once per function, and only for a call long enough that 5-15 µs do not count.
    asked = []

    def recording(fn, args, kwargs, gil=None, others_exactly=False):
        asked.append(others_exactly)
        return timed_probe(fn, args, kwargs, gil, others_exactly)

    timed_probe = probes.timed_probe
    _patch(monkeypatch, "timed_probe", recording)
    data = b"x" * (4 << 20)  # sha256 releases the GIL, for ~10 ms
    assert list(ex.map(_tasks.digest, [data] * 4)) == [_tasks.digest(data)] * 4
    assert asked[:2] == [False, True]
    asked.clear()
    assert list(ex.map(_tasks.tiny, range(20))) == [i + 1 for i in range(20)]
    assert asked == [False]  # tiny: decided on one call, read as cheaply as ever


def test_probes_tell_blocking_from_computing():
    _, wall, cpu, _, stolen, _ = probes.timed_probe(time.sleep, (0.01,), {})
    assert wall >= 0.01 and cpu < wall / 2 and not stolen  # it blocked: really waiting
    _, wall, cpu, _, stolen, _ = probes.timed_probe(_tasks.python_work, (10_000,),
                                                             {})
    assert cpu > 0


@pytest.mark.parametrize("n, chunksize", [(3, None), (13, None), (200, None), (5_000, None),
                                          (200, 7), (5_000, 7)])
def test_a_map_fails_at_its_failing_item_in_every_phase(ex, n, chunksize):
    # Exploring (one call at a time), waiting for the decision (segments) and decided
    # (segments inline or in process chunks, of the caller's size if given): results
    # before the failing item come out.
    for bad in (0, n // 2, n - 1):
        results = ex.map(_tasks.fail_on, range(n), [bad] * n, chunksize=chunksize)
        assert [next(results) for _ in range(bad)] == list(range(bad))
        with pytest.raises(ValueError, match=f"bad value {bad}"):
            next(results)
    assert list(ex.map(_tasks.fail_on, range(n), [-1] * n, chunksize=chunksize)) == list(
        range(n))


def test_map_async_fails_at_its_failing_item(ex):
    async def main():
        seen = []
        with pytest.raises(ValueError, match="bad value 1500"):
            async for value in ex.map_async(_tasks.fail_on, range(3000), [1500] * 3000):
                seen.append(value)
        return seen

    list(ex.map(_tasks.fail_on, range(100), [-1] * 100))  # decided: segments at once
    assert asyncio.run(main()) == list(range(1500))


def test_a_map_of_tiny_calls_runs_in_its_caller_like_a_loop(ex):
    # The caller waits for the results anyway: tiny probes run there, and so does the
    # rest once decided inline, with no hand-over at all.
    here = (os.getpid(), threading.current_thread().name)
    assert set(ex.map(_tasks.where, range(100))) == {here}
    assert _lane(ex, _tasks.where) == "inline"


def test_map_async_never_blocks_its_loop_with_a_probe(ex):
    async def main():
        here = (os.getpid(), threading.current_thread().name)
        return here, [where async for where in ex.map_async(_tasks.where, range(10))]

    here, places = asyncio.run(main())
    assert places[0] != here  # the first probe ran on a thread


def test_a_ctrl_c_in_a_probe_run_by_the_caller_leaves_the_profile_usable(ex):
    with pytest.raises(KeyboardInterrupt):
        list(ex.map(_tasks.interrupt_on, range(10), [0] * 10))
    assert list(ex.map(_tasks.interrupt_on, range(1, 10), [0] * 9)) == list(range(1, 10))


def test_more_probes_than_a_map_has_first_calls(ex, monkeypatch):
    # Exploring can take more calls than a map sends one by one: the segments waiting for
    # the decision then give their calls one by one, and their results stay in order.
    monkeypatch.setattr(auto_maps, "HEAD", 1)
    assert list(ex.map(_tasks.wait_a_little, [0.002] * 40)) == [0.002] * 40
    assert _lane(ex, _tasks.wait_a_little) == "thread"


def test_shutdown_while_a_map_waits_for_its_decision_loses_no_call(no_leaks):
    ex = multilane.Executor(processes=1, threads=2)
    results = ex.map(_tasks.wait_a_little, [0.01] * 60)
    ex.shutdown(wait=True)
    assert list(results) == [0.01] * 60


def test_exceptions_reach_their_futures_and_exploring_goes_on(ex):
    futures = [ex.submit(_tasks.fail_on, i, 0) for i in range(50)]
    with pytest.raises(ValueError, match="bad value 0"):
        futures[0].result(TIMEOUT)
    assert [f.result(TIMEOUT) for f in futures[1:]] == list(range(1, 50))
    assert _lane(ex, _tasks.fail_on) == "inline"


def test_shutdown_while_deciding_loses_no_call(no_leaks):
    ex = multilane.Executor(processes=1, threads=2)
    futures = [ex.submit(_tasks.wait_a_little, 0.01) for _ in range(30)]
    ex.shutdown(wait=True)
    assert [f.result(TIMEOUT) for f in futures] == [0.01] * 30


def test_a_call_sent_after_its_lane_stopped_at_shutdown_runs_here(no_leaks):
    # A watcher's take-over can send calls on just as the executor shuts their lane
    # down: accepted before the shutdown, they must run (here), not fail.
    ex = multilane.Executor(processes=1, threads=2)
    assert ex.submit(_tasks.wait_a_little, 0.001).result(TIMEOUT) == 0.001
    auto = ex._lanes.get("auto")
    (p,) = auto._profiles.values()
    ex.shutdown(wait=True)
    future = LaneFuture()
    auto._send(p, "thread", future, _tasks.wait_a_little, (0.002,), {})
    assert future.result(TIMEOUT) == 0.002


def test_explain_and_report(ex):
    list(ex.map(_tasks.tiny, range(100)))
    explanation = ex.explain(_tasks.tiny)
    text = str(explanation)
    assert "tasks.tiny()" in text and "inline" in text and "µs" in text
    (profile,) = explanation.profiles
    assert profile["calls"] == 100 and set(profile["estimated_s"]) >= {"inline", "thread"}
    assert "| _tasks.tiny() | 100 |" in ex.report()
    assert "no calls seen yet" in str(ex.explain(_tasks.square))


def test_a_timeout_on_auto_is_kept_and_a_call_that_outlives_it_sends_the_rest_to_processes(
        ex, tmp_path):
    """The first call of a function explores on a thread, which cannot stop it: past its
    timeout its future fails, and the function's calls go where a timeout can stop them."""
    timed = ex.options(timeout=0.3)
    gate = tmp_path / "gate"
    first = timed.submit(_tasks.block_until_file, str(gate))
    with pytest.raises(multilane.TaskTimeout, match=r"block_until_file\(\) ran longer"):
        first.result(TIMEOUT)
    gate.touch()  # the thread it ran on finishes
    (profile,) = ex.explain(_tasks.block_until_file).profiles
    assert profile["lane"] == "process" and "past its timeout" in profile["verdict"], profile
    with pytest.raises(multilane.TaskTimeout, match="killed its worker"):
        timed.submit(_tasks.block_until_file, str(tmp_path / "never")).result(TIMEOUT)


def test_a_tiny_function_decided_inline_runs_in_a_process_when_it_has_a_timeout(ex):
    assert set(ex.map(_tasks.get_pid, range(50))) == {os.getpid()}
    assert _lane(ex, _tasks.get_pid) == "inline"
    assert ex.options(timeout=5).submit(_tasks.get_pid).result(TIMEOUT) != os.getpid()
    assert ex.submit(_tasks.get_pid).result(TIMEOUT) == os.getpid()


def test_retries_on_auto_rerun_a_call_that_raised_what_they_name(ex, tmp_path):
    marker = str(tmp_path / "marker")
    retrying = ex.options(retries=1, retry_on=ValueError)
    assert retrying.submit(_tasks.fail_once, marker, 7).result(TIMEOUT) == 7


def test_chunksize_sets_the_chunks_of_a_map_auto_sends_to_processes(ex, monkeypatch):
    """A decided process map takes the caller's chunk size: 100 items in chunks of 10."""
    n = 300_000
    list(ex.options(lane="process").map(_tasks.python_work, [1] * 4))  # workers ready
    assert list(ex.map(_tasks.python_work, [n] * 12)) == [_tasks.python_work(n)] * 12
    if _lane(ex, _tasks.python_work) != "process":
        pytest.skip("decided another lane on this machine: " + _lane(ex, _tasks.python_work))
    before = ex.statistics()["process"].completed
    assert list(ex.map(_tasks.python_work, [1] * 100, chunksize=10)) == [
        _tasks.python_work(1)] * 100
    assert ex.statistics()["process"].completed - before == 10


@pytest.mark.skipif(not MANY_CORES, reason="chunks only pay off with a second core")
def test_a_big_backlog_of_small_calls_goes_to_processes_in_chunks(ex):
    """Decided inline, a map with much more small work than one core should do runs in
    chunks on every core; each result and exception reaches its own future. (Chunks go
    only to workers that have loaded the function: a map that ends before they have runs
    here, and the next one goes to them.)"""
    ex.options(lane="process").submit(_tasks.identity, 0).result(TIMEOUT)
    n = 20_000
    for _ in range(5):
        results = ex.map(_tasks.work_then_fail_on, range(n), [12_345] * n)
        for i in range(n):
            if i == 12_345:
                with pytest.raises(ValueError, match="bad value 12345"):
                    next(results)
                break
            assert next(results) == i
        stats = ex.statistics()["process"]
        if stats.completed + stats.inflight + stats.pending >= 8:  # the chunks went there
            break
    assert _lane(ex, _tasks.work_then_fail_on) == "inline"
    assert stats.completed + stats.inflight + stats.pending >= 8, str(
        ex.explain(_tasks.work_then_fail_on))


def test_a_tiny_call_is_timed_over_a_run_before_its_map_goes_to_processes(ex, monkeypatch):
    """A tiny call timed alone is mostly the timer and a cold call (add_one: 2.4 µs alone,
    0.03 µs in a run). One that alone looks worth chunks is first timed over a head of
    its map, run in the caller: a 20,000-call map of it went to processes for 2 ms, where
    the caller alone takes 1 ms."""
    def slow_alone(fn, args, kwargs, *how):
        result, _, _, start, stolen, crowded = timed_probe(fn, args, kwargs, *how)
        return result, 20e-6, 20e-6, start, stolen, crowded  # tiny, yet 2,000 make 40 ms

    timed_probe = probes.timed_probe
    _patch(monkeypatch, "timed_probe", slow_alone)
    here = (os.getpid(), threading.current_thread().name)
    where = set(ex.map(_tasks.where, range(2_000)))
    (profile,) = ex.explain(_tasks.where).profiles
    assert where == {here}, profile
    assert profile["run"] is not None, profile
    calls, each = profile["run"]
    # (twice as many or more if an interruption made the first run look long)
    assert profile["lane"] == "inline" and calls >= params.MEASURED_CALLS, profile
    assert each < 20e-6 and profile["estimated_s"]["inline"] == each, profile
    assert f"in a run of {calls} calls" in str(ex.explain(_tasks.where))
    assert "process" not in ex.statistics()  # no chunk was sent


def _gil_probed(fn, *args, seconds=0.05):
    """The GIL-wait probes the watcher takes while ``fn(*args)`` runs over and over."""
    watcher = probes.wait_watch()
    gil = probes.GilSamples()
    ticket = watcher.watch(0.002, 0.1, 0.5, None, gil)
    assert ticket
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        fn(*args)
    gil.ended = True
    watcher.unwatch(ticket)
    return gil


def test_the_gil_wait_probe_tells_holding_the_gil_from_releasing_it():
    # Held, the watcher waits about a switch interval (the holder is asked to let go after
    # one); released (hashlib on large inputs), next to nothing.
    interval = sys.getswitchinterval()
    held = _gil_probed(_tasks.python_work, 20_000)
    assert held.held >= 1 and held.longest >= 0.5 * interval, held.counts()
    released = _gil_probed(_tasks.digest, b"x" * (4 << 20))
    assert released.released >= 1 and released.released >= released.held, released.counts()
    assert released.held + released.released <= params.GIL_SAMPLES


def test_a_gil_wait_after_the_call_says_nothing():
    gil = probes.GilSamples()
    assert gil(0.010) is True and gil.counts() == (1, 0, 0.010)  # held; one more wanted
    assert gil(0.002) is True and gil.counts() == (1, 0, 0.010)  # in between: no verdict
    assert gil(0.0001) is False and gil.counts()[:2] == (1, 1)   # released; enough
    gil.ended = True
    assert gil(0.010) is False and gil.counts()[:2] == (1, 1)


@pytest.mark.skipif(not MANY_CORES, reason="a process only pays off with a second core")
def test_a_function_found_holding_the_gil_is_never_run_in_pairs(ex, monkeypatch):
    # Two threads holding the GIL share one core: a pair would cost two calls' time to
    # learn what the GIL-wait probe told already. (Every wait counts as held here.)
    monkeypatch.setattr(probes, "GIL_HELD", 0.0)
    n = 300_000  # ~10 ms of pure Python
    assert list(ex.map(_tasks.python_work, [n] * 24)) == [_tasks.python_work(n)] * 24
    (profile,) = ex._lanes.get("auto")._profiles.values()
    assert profile.gil == "held" and profile.pair_tries == 0, profile
    # The process lane judges it next: at ~10 ms a call, from the machine's round trip
    # once the workers have loaded it (KNOWN_TRIPS), else from a process probe, in this
    # map or, if its calls paid for the probe only by their end, in the next. A worker
    # that took 1.5x the time of the call here, twice (a core busy elsewhere), rightly
    # leaves it inline: that is the process probe's verdict too. (A clean-clone run found
    # it inline once; which verdict was not kept.)
    if profile.exploring or profile.revisit:
        assert list(ex.map(_tasks.python_work, [n] * 24)) == [_tasks.python_work(n)] * 24
        assert profile.pair_tries == 0, profile
    assert profile.warmed and (profile.process_work is not None or profile.lane == "process")
    if profile.lane == "process":
        assert "the watcher waited" in profile.verdict
    else:
        assert profile.lane == "inline" and profile.verdict.startswith("computing, "), profile
    assert "found the GIL held" in str(ex.explain(_tasks.python_work))


@pytest.mark.skipif(not MANY_CORES, reason="a process only pays off with a second core")
def test_a_gil_wait_probe_misread_as_released_is_overruled_by_its_pair(ex, monkeypatch):
    # Were another thread to take the GIL from the call just as the watcher asks for it,
    # a function holding it would look released: its pair of calls on threads, which
    # cannot gain, sends it to the process probe all the same. What that probe then
    # measures decides between a process and this one (a busy machine can slow the
    # worker's call enough for inline to win): threads it is not.
    monkeypatch.setattr(probes, "GIL_HELD", 1e9)
    monkeypatch.setattr(probes, "GIL_RELEASED", 1e9)
    n = 300_000
    assert list(ex.map(_tasks.python_work, [n] * 24)) == [_tasks.python_work(n)] * 24
    (profile,) = ex._lanes.get("auto")._profiles.values()
    assert profile.gil == "released" and profile.pair_tries >= 1, profile
    if profile.pairs_judged == 0 and profile.pairs_contended == profile.pair_tries:
        # Every pair was robbed of a core (a busy machine): a robbed pair proves nothing
        # either way, and the GIL-wait probes stand, misread or not (docs/architecture.md:
        # "the price of trusting them").
        assert profile.lane == "thread", (profile.verdict, profile)
    else:  # judged on a process: by its probe, or from the machine's trip (KNOWN_TRIPS)
        assert profile.lane in ("process", "inline"), (profile.verdict, profile)
        if profile.exploring or profile.revisit:
            # 24 calls can be too few to pay for starting the workers, or pay for the
            # process probe only by their end: the next map's calls do.
            assert list(ex.map(_tasks.python_work, [n] * 24)) == [_tasks.python_work(n)] * 24
        assert profile.warmed, (profile.verdict, profile)
        assert profile.lane in ("process", "inline"), (profile.verdict, profile)


def test_one_solo_probe_is_enough_for_a_long_call_that_clearly_waits_or_holds_the_gil():
    interval = sys.getswitchinterval()

    def after_one(wall, cpu, held=0, released=0, longest=0.0):
        p = profile_module.Profile("f", 0, False)
        p.solo, p.solo_runs = (wall, cpu), 1
        p.gil_held, p.gil_released, p.gil_longest = held, released, longest
        return p.solo_wanted()

    long = 4 * interval
    assert not after_one(long, 0.01 * long)  # waited: mostly waiting, no second look
    assert not after_one(long, long, held=1, longest=1.2 * interval)  # held the GIL
    assert after_one(long, long)  # computed, GIL not probed: a second look
    assert after_one(long, long, released=2)  # released: the pairs decide, after two
    assert after_one(long, long, held=1, longest=0.6 * interval)  # never a whole interval
    assert after_one(long, 0.5 * long, held=1, longest=1.2 * interval)  # also waited
    assert after_one(interval, interval, held=1, longest=1.2 * interval)  # short: outlier?
    p = profile_module.Profile("f", 0, False)
    assert p.solo_wanted()  # the first


def test_calls_run_here_while_the_workers_load_keep_every_result(ex, monkeypatch):
    """While the workers load a function, this thread cuts a slice at a time from the
    waiting segments and runs it; the last slice of a segment is what is left of it, and
    its results join those cut before (once they were lost: a map yielded the last slice
    only)."""
    list(ex.map(abs, range(-50, 50)))  # a profile to run them under
    auto = ex._lanes.get("auto")
    (p,) = auto._profiles.values()
    p.warmed, p.basis = False, params.CALLER_SLICE_S / 100  # slices of 100 calls
    monkeypatch.setattr(auto, "_warm_decided", lambda p, fn: None)  # never loaded
    monkeypatch.setattr(auto, "_worth_chunks", lambda p, calls, loaded=True: not loaded)
    items = range(-500, 700)
    segments = [Segment(LaneFuture(), abs, items, a, b, True)
                for a, b in ((0, 1000), (1000, 1200))]
    pieces = [segment.piece for segment in segments]  # what the map's caller holds
    auto._run_decided_inline(p, deque(segments))
    assert [piece.result(TIMEOUT) for piece in pieces] == [
        [abs(x) for x in items[:1000]], [abs(x) for x in items[1000:]]]
