"""multilane.Executor: one ``concurrent.futures`` executor, every lane.

Each lane starts on first use, so a program that only uses threads never starts a
process:

=========  ==============================================================================
lane       runs the call
=========  ==============================================================================
auto       where its measurements say it runs fastest (the default)
process    in a pool of worker processes (:class:`multilane.ProcessPoolExecutor`)
thread     on a pool of threads: blocking I/O, and code that releases the GIL
async      on an event loop in a thread of its own (uvloop when installed); coroutine
           functions only
inline     in the caller, at once; the future is finished when ``submit`` returns
hybrid     in a process worker that runs many tasks at once on inner threads and its
           own event loop: I/O waits overlap while sibling processes compute
cluster    on a Dask or Ray cluster, when the executor is given one (``cluster=``)
=========  ==============================================================================

How a call travels::

    Executor.submit ── Options view (lane, TaskOptions) ── Lanes.resolve ── Lane.submit
                                                                  │
                                 the auto lane routes through the same registry
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future
from typing import Any, Literal

from ._cores import usable_cores
from ._future import note_interrupt
from ._options import KEEP
from ._view import Options
from .auto import AutoLane, Explanation
from .auto._params import MAX_THREADS
from .auto._store import ProfileStore
from .auto._store import shared as shared_store
from .lanes import LaneKind, Lanes
from .lanes.inline import InlineLane
from .lanes.loop import AsyncLane
from .lanes.process import ProcessLane, ProcessPoolExecutor
from .lanes.thread import ThreadLane

__all__ = ["LANES", "Executor"]

LANES = ("auto", "process", "thread", "async", "inline", "hybrid")
_AUTO = "auto"
_HYBRID_CONCURRENCY = 32
_VIEWS_KEPT = 256  # distinct option sets remembered by Executor.options()


def _default_threads() -> int:
    # As ThreadPoolExecutor: enough for I/O, bounded for machines with many cores.
    return min(32, usable_cores() + 4)


def _profile_store(profiles: bool | str | os.PathLike[str]) -> ProfileStore:
    """Where the auto lane keeps what it learns (see ``Executor``)."""
    if profiles is True:
        return shared_store()
    if profiles is False:
        return ProfileStore.disabled()
    if isinstance(profiles, (str, os.PathLike)):
        return ProfileStore.open(profiles)
    raise TypeError(f"profiles must be True, False or a path, not {type(profiles).__name__}")


def _check_count(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


class Executor(_BaseExecutor):
    """One executor for every lane; a drop-in ``concurrent.futures.Executor``.

    ``processes`` and ``threads`` size the process and thread lanes (defaults: one
    process per usable core; as many threads as ``ThreadPoolExecutor``). The hybrid lane
    has ``hybrid_processes`` workers (default: one per core), each running up to
    ``hybrid_concurrency`` tasks at once. ``lane`` is where calls go when a view names
    none; coroutine functions go to ``"async"`` unless that lane is ``"auto"``, which
    places them itself. ``max_tasks_per_child`` and ``max_memory_per_child`` (bytes of
    resident memory, checked after each task) replace process workers without losing
    queued work; ``native_threads`` caps each worker's native thread pools (OpenMP, BLAS:
    default, its share of the cores). The auto lane keeps what it learns of each function
    for the next run (under ``$MULTILANE_CACHE_DIR``, else the user's cache directory);
    ``profiles=False`` (or the environment variable ``MULTILANE_PROFILES=off``) turns that
    off, and a path puts it in a file of its own. Calls that mostly wait may run on more
    threads than ``threads`` when it is not given (up to 256), never on more when it is.
    ``cluster`` (``"dask"``, ``"ray"`` or a :mod:`multilane.cluster` backend) adds the
    lane ``"cluster"``.

    ``submit``, ``map``, ``run`` and ``map_async`` have ``concurrent.futures``' signatures:
    every keyword of a call goes to the function. The lane, a timeout and retries are
    chosen on a view, ``ex.options(lane=..., timeout=..., retries=..., retry_on=...)``,
    which has the same methods.

    Example::

        with multilane.Executor(threads=64) as ex:
            pages = list(ex.options(lane="thread").map(download, urls))
            sizes = list(ex.options(lane="process").map(parse, pages))
            value = ex.submit(fetch, url, timeout=5).result()   # fetch's own timeout
    """

    def __init__(self, processes: int | None = None, threads: int | None = None, *,
                 hybrid_processes: int | None = None,
                 hybrid_concurrency: int = _HYBRID_CONCURRENCY,
                 lane: str = _AUTO, max_tasks_per_child: int | None = None,
                 max_memory_per_child: int | None = None, native_threads: int | None = None,
                 profiles: bool | str | os.PathLike[str] = True,
                 cluster: Any = None) -> None:
        _check_count("processes", processes)
        _check_count("threads", threads)
        _check_count("hybrid_processes", hybrid_processes)
        _check_count("hybrid_concurrency", hybrid_concurrency)
        _check_count("native_threads", native_threads)
        # The auto lane widens the thread lane for calls that mostly wait, up to the
        # threads the user gave, else up to MAX_THREADS.
        ceiling = threads or MAX_THREADS
        threads = threads or _default_threads()
        store = _profile_store(profiles)  # opened on first use
        if lane == _AUTO:
            store.prefetch()  # while the program gets ready to call
        def pool(workers: int | None, concurrency: int) -> ProcessLane:
            return ProcessLane(ProcessPoolExecutor(
                workers, max_tasks_per_child=max_tasks_per_child,
                max_memory_per_child=max_memory_per_child, native_threads=native_threads,
                _concurrency=concurrency))

        remote = None
        if cluster is not None:
            from .cluster import backend

            remote = backend(cluster)  # a bad name or a missing package fails here
        # The auto lane weighs a cluster the executor joins (one it starts here would
        # only share this machine's cores with the process lane).
        joins = remote is not None and getattr(remote, "local", True) is False
        kinds = {
            "auto": LaneKind(lambda lanes: AutoLane(lanes, processes or usable_cores(), store,
                                                    owns_store=profiles is not True,
                                                    join_cluster=joins),
                             routes=True),
            "process": LaneKind(lambda lanes: pool(processes, 1)),
            "thread": LaneKind(lambda lanes: ThreadLane(threads, ceiling=ceiling)),
            "async": LaneKind(lambda lanes: AsyncLane(), coroutines_only=True),
            "inline": LaneKind(lambda lanes: InlineLane(), stoppable=False),
            "hybrid": LaneKind(lambda lanes: pool(hybrid_processes, hybrid_concurrency)),
        }
        if remote is not None:
            from .cluster import ClusterLane

            kinds["cluster"] = LaneKind(lambda lanes: ClusterLane(remote))
        self._lanes = Lanes(kinds, default=lane, coroutine_lane="async")
        self._direct = Options(self._lanes)
        self._views: dict[tuple, Options] = {}  # see options()

    # ------------------------------------------------------------------ calls

    def options(self, *, lane: str | None = KEEP, timeout: float | None = KEEP,
                retries: int = KEEP,
                retry_on: type[BaseException] | tuple[type[BaseException], ...] = KEEP,
                ) -> Options:
        """A view of this executor with a lane and per-task options; see
        :class:`multilane.Options`. Options not named keep their defaults.

        Views are immutable, so the same options give the same view, made and checked
        once: ``ex.options(lane="thread").submit(fn, x)`` in a loop costs a dict look-up
        more than a view kept in a variable."""
        key = (lane, timeout, retries, retry_on)
        try:
            return self._views[key]
        except KeyError:
            cacheable = True
        except TypeError:  # an unhashable option: checked (and refused) below
            cacheable = False
        view = self._direct.options(lane=lane, timeout=timeout, retries=retries,
                                    retry_on=retry_on)
        if cacheable:
            if len(self._views) >= _VIEWS_KEPT:
                self._views.clear()
            self._views[key] = view
        return view

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedules ``fn(*args, **kwargs)`` on the default lane; returns its Future."""
        return self._direct.submit(fn, *args, **kwargs)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any],
            timeout: float | None = None, chunksize: int | None = None,
            buffersize: int | None = None, ordered: bool = True,
            progress: bool | str = False) -> Iterator[Any]:
        """Like the built-in ``map``, on the default lane; see :meth:`Options.map`."""
        return self._direct.map(fn, *iterables, timeout=timeout, chunksize=chunksize,
                                buffersize=buffersize, ordered=ordered, progress=progress)

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``await ex.run(fn, *args, **kwargs)``: the result, without blocking the loop."""
        return await self._direct.run(fn, *args, **kwargs)

    def map_async(self, fn: Callable[..., Any], *iterables: Iterable[Any],
                  chunksize: int | None = None, buffersize: int | None = None,
                  ordered: bool = True, progress: bool | str = False) -> AsyncIterator[Any]:
        """``async for result in ex.map_async(fn, items)``: results in order; see
        :meth:`Options.map_async`."""
        return self._direct.map_async(fn, *iterables, chunksize=chunksize,
                                      buffersize=buffersize, ordered=ordered,
                                      progress=progress)

    def cancel(self, future: Future, force: bool = False) -> bool:
        """``future.cancel()``; with ``force=True``, also stop the call if it is running.

        A forced cancel kills and replaces the worker of a process call and cancels a
        coroutine; a running thread cannot be stopped (returns False, as ``cancel()``).
        """
        if future.cancel():
            return True
        if not force:
            return False
        for _, lane in self._lanes.started():
            if lane.owns(future):
                return bool(lane.cancel(future, force=True))
        return False

    # ------------------------------------------------------------------ lifecycle

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops every started lane; with ``wait``, returns once their tasks are done.
        The auto lane goes first: calls still waiting for its decision go to their lanes
        before those stop."""
        lanes = self._lanes
        lanes.close()
        for name, lane in lanes.started():
            if lanes.kinds[name].routes:
                lane.shutdown(wait=False, cancel_futures=cancel_futures)
        # Read again: a routing lane may have started a lane for the calls it released.
        running = [lane for name, lane in lanes.started() if not lanes.kinds[name].routes]
        for lane in running:  # all told first, then all waited for: they stop in parallel
            lane.shutdown(wait=False, cancel_futures=cancel_futures)
        if wait:
            for lane in running:
                lane.shutdown(wait=True, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Stops at once: process workers are killed, queued calls cancelled, the event
        loop stopped. Running threads cannot be stopped; they are not waited for."""
        self._lanes.close()
        for _, lane in self._lanes.started():
            lane.terminate()

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> Literal[False]:
        if exc_type is not None and not issubclass(exc_type, Exception):
            note_interrupt()  # Ctrl-C (or SystemExit) in the block: do not wait for tasks
            self.terminate()
        else:
            self.shutdown(wait=True)
        return False

    @property
    def closed(self) -> bool:
        """True once ``shutdown`` or ``terminate`` has been called."""
        return self._lanes.closed

    # ------------------------------------------------------------------ looking inside

    def lanes(self) -> tuple[str, ...]:
        """The lanes that run calls and have started so far, in the order they started."""
        return tuple(name for name, _ in self._lanes.started()
                     if not self._lanes.kinds[name].routes)

    def statistics(self) -> dict[str, Any]:
        """A frozen snapshot of each started lane's counters, by lane name."""
        return {name: lane.statistics() for name, lane in self._lanes.started()}

    def resolve(self, fn: Callable[..., Any], lane: str | None = None) -> str:
        """The lane a call of ``fn`` goes to when a view names ``lane`` (None: the
        default), checked: :class:`multilane.LaneError` says what is wrong."""
        return self._lanes.resolve(fn, lane)

    def explain(self, fn: Callable[..., Any]) -> Explanation:
        """What the auto lane measured about ``fn`` and where it sends its calls, per
        argument size: ``str()`` of it is a readable summary."""
        return self._auto().explain(fn)

    def report(self) -> str:
        """Per function the auto lane has seen: calls, lanes used, time spent."""
        return self._auto().report()

    def forget(self, fn: Callable[..., Any] | None = None) -> None:
        """The auto lane forgets what it measured of ``fn`` (None: of every function):
        their next calls explore again."""
        self._auto().forget(fn)

    def _auto(self) -> AutoLane:
        auto = self._lanes.lane(_AUTO)
        assert isinstance(auto, AutoLane)
        return auto
