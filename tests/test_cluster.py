"""The cluster lane on Dask and on Ray, each started by the executor on this machine (one
per backend for the module: a LocalCluster on 127.0.0.1, a local Ray instance), and a
Dask scheduler started by the test that the executor only joins.

What the lane must keep of the local pool's semantics, on either cluster: every keyword
reaches the function, equal calls both run, exceptions arrive as themselves, a lost worker
is a WorkerCrashed with the same retry rules, a timeout stops its call, the window bounds
the calls on the cluster, shared arrays travel once, and nothing is left running."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal

import _tasks
import pytest
from conftest import TIMEOUT, children, wait_until

np = pytest.importorskip("numpy")

import multilane  # noqa: E402

WINDOW = 4
NEEDS = {"dask": "distributed", "ray": "ray"}


def _backend(name: str):
    """The backend, counting the objects it places on every worker."""
    if name == "dask":
        from multilane.cluster.dask import Dask as base

        options = {"workers": 2, "window": WINDOW}
    else:
        from multilane.cluster.ray import Ray as base

        options = {"cpus": 2, "window": WINDOW}

    class Counting(base):
        shared = 0

        def share(self, obj):
            self.shared += 1
            return super().share(obj)

    return Counting(**options)


@pytest.fixture(scope="module", params=list(NEEDS))
def cluster(request):
    name = request.param
    if importlib.util.find_spec(NEEDS[name]) is None:
        pytest.skip(f"{NEEDS[name]} is not installed")
    before = children()
    backend = _backend(name)
    ex = multilane.Executor(cluster=backend)
    yield ex, backend
    ex.shutdown(wait=True)
    if name == "ray":
        import ray

        assert not ray.is_initialized()  # the executor started it, so it stopped it
    wait_until(lambda: not children() - before, message=f"{name} left processes behind")


@pytest.fixture
def lane(cluster):
    return cluster[0].options(lane="cluster")


def test_every_keyword_reaches_the_function(lane):
    # Dask's submit takes key=, retries=, pure= and workers= for itself; Ray's options
    # num_cpus= and max_retries=.
    keywords = {"key": "k", "retries": 9, "pure": True, "workers": ["w"], "num_cpus": 9}
    assert lane.submit(_tasks.keywords, 1, **keywords).result(TIMEOUT) == ((1,), keywords)


def test_map_in_order_in_chunks_and_one_by_one(lane):
    assert list(lane.map(_tasks.add, range(1000), range(1000))) == [2 * i for i in range(1000)]
    assert list(lane.map(_tasks.square, range(12), chunksize=1)) == [i * i for i in range(12)]
    assert list(lane.map(_tasks.square, [])) == []


def test_lambdas_closures_and_coroutines_run(lane):
    offset = 5
    assert lane.submit(lambda x: x + offset, 1).result(TIMEOUT) == 6

    async def twice(x):
        await asyncio.sleep(0)
        return 2 * x

    assert lane.submit(twice, 4).result(TIMEOUT) == 8

    async def main():
        return await lane.run(_tasks.add, 2, b=3)

    assert asyncio.run(main()) == 5


def test_equal_calls_both_run(lane):
    first, second = (lane.submit(os.urandom, 16) for _ in range(2))
    assert first.result(TIMEOUT) != second.result(TIMEOUT)


def test_an_exception_arrives_as_itself(lane):
    with pytest.raises(ValueError, match="no good") as caught:
        lane.submit(_tasks.raise_value_error, "no good").result(TIMEOUT)
    assert type(caught.value) is ValueError  # not wrapped (Ray wraps it in RayTaskError)
    results = lane.map(_tasks.fail_on, range(20), [13] * 20)
    assert [next(results) for _ in range(13)] == list(range(13))
    with pytest.raises(ValueError, match="bad value 13"):
        next(results)


def test_retry_on_reruns_a_call(lane, tmp_path):
    retrying = lane.options(retries=1, retry_on=ValueError)
    assert retrying.submit(_tasks.fail_once, str(tmp_path / "m"), 7).result(TIMEOUT) == 7
    with pytest.raises(ValueError):  # not one of retry_on: raised at once
        lane.options(retries=1, retry_on=KeyError).submit(
            _tasks.fail_once, str(tmp_path / "n"), 7).result(TIMEOUT)


def test_a_lost_worker_is_a_worker_crash_and_retries_apply(cluster, lane, tmp_path):
    name = cluster[1].name.capitalize()
    with pytest.raises(multilane.WorkerCrashed, match=f"a {name} worker died"):
        lane.submit(_tasks.kill_self, signal.SIGKILL).result(TIMEOUT)
    marker = str(tmp_path / "crashed")
    assert lane.options(retries=1).submit(_tasks.crash_once, marker, "done").result(
        TIMEOUT) == "done"
    assert lane.submit(_tasks.square, 3).result(TIMEOUT) == 9  # the cluster goes on


def test_a_call_past_its_timeout_is_stopped(cluster, lane, tmp_path):
    hung = lane.options(timeout=0.5).submit(_tasks.block_until_file, str(tmp_path / "never"))
    with pytest.raises(multilane.TaskTimeout,
                       match=f"timeout of 0.5 s on the {cluster[1].name} cluster.*stopped"):
        hung.result(TIMEOUT)
    # Its worker was stopped: both slots run calls again.
    assert list(lane.map(_tasks.square, range(8), chunksize=1)) == [i * i for i in range(8)]


def test_the_window_bounds_the_calls_on_the_cluster(cluster, lane, tmp_path):
    ex, _ = cluster
    gate = str(tmp_path / "gate")
    futures = [lane.submit(_tasks.block_until_file, gate) for _ in range(20)]
    stats = wait_until(lambda: (s := ex.statistics()["cluster"]).in_flight == WINDOW and s)
    assert stats.queued == 20 - WINDOW and stats.window == WINDOW
    assert futures[-1].cancel()  # still here: cancelled without touching the cluster
    open(gate, "w").close()
    assert all(isinstance(f.result(TIMEOUT), int) for f in futures[:-1])


def test_a_shared_array_goes_to_the_workers_once(cluster, lane):
    _, backend = cluster
    table = multilane.shared(np.arange(2**20, dtype=np.float64))
    before = backend.shared
    parts = [table[i:i + 2**16] for i in range(0, 2**20, 2**16)]
    assert list(lane.map(_tasks.array_sum, parts)) == [float(p.sum()) for p in parts]
    assert lane.submit(_tasks.array_sum, table[::-3]).result(TIMEOUT) == float(table[::-3].sum())
    with pytest.raises(ValueError, match="read-only"):
        lane.submit(_tasks.try_to_write, table[:10]).result(TIMEOUT)
    assert backend.shared == before + 1


def test_a_running_dask_scheduler_is_joined_and_left_running():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from multilane.cluster.dask import Dask

    before = children()
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", processes=True) as local:
        with multilane.Executor(cluster=Dask(local.scheduler_address)) as ex:
            assert ex.options(lane="cluster").submit(_tasks.square, 7).result(TIMEOUT) == 49
            assert ex.statistics()["cluster"].slots == 1
        with Client(local) as client:  # still serving
            assert client.submit(_tasks.square, 3).result(TIMEOUT) == 9
    wait_until(lambda: not children() - before, message="processes left behind")


def test_a_cluster_started_here_is_never_weighed_by_the_auto_lane(cluster):
    # Its workers share this machine's cores with the process lane: the auto lane leaves
    # it to the calls that name it.
    ex, _ = cluster
    assert ex.submit(_tasks.python_work, 1000).result(TIMEOUT) == _tasks.python_work(1000)
    assert ex.explain(_tasks.python_work).machine["cluster_slots"] == 0


def test_the_auto_lane_sends_long_calls_to_a_joined_cluster_with_more_slots(tmp_path,
                                                                          monkeypatch):
    # A cluster joined by its address, telling of 16 slots against this machine's two
    # processes: calls of 20 ms of Python, with many to come, are worth a probe there;
    # the probe's round trip and work make it the fastest lane, and the calls go there.
    # (This machine has two cores: on the cluster's worker the call sleeps instead of
    # computing, as if each of its 16 threads had a core of its own.) The decision is not
    # stored: the next run may join another cluster, or none.
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from multilane.auto._fingerprints import function_fingerprint
    from multilane.auto._store import ProfileStore
    from multilane.cluster.dask import Dask

    monkeypatch.setenv("MULTILANE_PROFILES", "on")  # (the suite turns the store off)
    before = children()
    fn = _tasks.computes_here_sleeps_on_dask
    with LocalCluster(n_workers=1, threads_per_worker=16, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", processes=True) as local:
        with multilane.Executor(processes=2, cluster=Dask(local.scheduler_address),
                                profiles=tmp_path / "profiles") as ex:
            wait_until(lambda: ex.explain(fn).machine["cluster_slots"],
                       message="the auto lane never weighed the cluster")
            assert list(ex.map(fn, [0.02] * 60)) == [0.02] * 60
            explained = ex.explain(fn)
            (profile,) = explained.profiles
            assert profile["lane"] == "cluster", str(explained)
            assert "faster on the cluster's 16 slots" in profile["verdict"]
            assert profile["cluster_work_s"] > 0 and profile["lanes"]["cluster"][0] > 0
            assert "the cluster joined: 16 slots, a round trip" in str(explained)
            # Most of them: the first ran here while the local lanes were probed
            assert ex.statistics()["cluster"].sent > 30
            assert list(ex.map(_tasks.tiny, range(100))) == list(range(1, 101))
    store = ProfileStore.open(tmp_path / "profiles")
    try:
        # A decision of the local lanes is stored; the cluster's is not.
        assert store.load(function_fingerprint(_tasks.tiny), 0) is not None
        assert store.load(function_fingerprint(fn), 0) is None
    finally:
        store.close()
    wait_until(lambda: not children() - before, message="processes left behind")


def test_bad_cluster_arguments_are_clear():
    with pytest.raises(ValueError, match="cluster must be one of 'dask', 'ray'"):
        multilane.Executor(cluster="spark")
    if importlib.util.find_spec("distributed") is not None:
        from multilane.cluster.dask import Dask

        with pytest.raises(ValueError, match="cannot be given with the address"):
            Dask("tcp://127.0.0.1:1", workers=2)
    with multilane.Executor() as ex, pytest.raises(multilane.LaneError, match="'cluster'"):
        ex.options(lane="cluster")
