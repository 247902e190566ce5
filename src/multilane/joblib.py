"""joblib's ``"multilane"`` backend: ``joblib.Parallel`` (and so scikit-learn's ``n_jobs``)
on a multilane :class:`~multilane.Executor`.

Importing this module registers the backend (``register()`` does it again, harmlessly)::

    import joblib
    import multilane.joblib

    with joblib.parallel_config("multilane", n_jobs=2):            # the auto lane
        squares = joblib.Parallel()(joblib.delayed(pow)(i, 2) for i in range(10))
    with joblib.parallel_config("multilane", lane="process"):     # or "thread", "hybrid"
        ...

Options of ``parallel_config`` for it: ``lane`` (default ``"auto"``), ``executor`` (an
``Executor`` of yours to run on; else one is shared by every ``Parallel`` call with the
same ``n_jobs``, as loky's is, and shut down at exit or by ``shutdown()``), and joblib's
own ``inner_max_num_threads`` (each worker's native thread pools; default, its share of
the cores). ``require="sharedmem"``, and ``prefer="threads"`` when no lane was given, run
on the thread lane. The first error cancels the batches that have not started. NumPy
arrays travel through shared memory, as every large buffer multilane sends does.
"""

from __future__ import annotations

import atexit
import threading
from concurrent.futures import Future
from typing import Any

import joblib
from joblib import register_parallel_backend
from joblib.parallel import AutoBatchingMixin, ParallelBackendBase, SequentialBackend

from ._cores import usable_cores
from ._executor import LANES, Executor

__all__ = ["MultilaneBackend", "register", "shutdown"]

NAME = "multilane"
if tuple(int(part) for part in joblib.__version__.split(".")[:2] if part.isdigit()) < (1, 5):
    raise ImportError(f"multilane.joblib needs joblib 1.5 or later (its backends' submit "
                      f"API), not {joblib.__version__}: pip install -U joblib")
_PLAIN_LANES = tuple(lane for lane in LANES if lane != "async")  # joblib calls plain functions


class MultilaneBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib's backend API (1.5+: ``submit`` and futures) on a multilane executor."""

    supports_retrieve_callback = True
    supports_inner_max_num_threads = True
    supports_sharedmem = True  # require="sharedmem": the thread lane

    def __init__(self, lane: str | None = None, executor: Executor | None = None,
                 nesting_level: int | None = None, inner_max_num_threads: int | None = None,
                 **backend_kwargs: Any) -> None:
        super().__init__(nesting_level=nesting_level,
                         inner_max_num_threads=inner_max_num_threads, **backend_kwargs)
        if lane is not None and lane not in _PLAIN_LANES:
            raise ValueError(f"lane must be one of {', '.join(_PLAIN_LANES)}, not {lane!r}")
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(f"executor must be a multilane.Executor, not "
                            f"{type(executor).__name__}")
        self._lane = lane
        self._executor = executor
        self._view: Any = None
        self.uses_threads = lane == "thread"
        self._pending: set[Future] = set()  # this backend's futures not done yet
        self._pending_lock = threading.Lock()

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(usable_cores() + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs: int | None = 1, parallel: Any = None, prefer: str | None = None,
                  require: str | None = None, **backend_kwargs: Any) -> int:
        n_jobs = self.effective_n_jobs(n_jobs)
        self.parallel = parallel
        if n_jobs == 1 and self._executor is None:
            from joblib.parallel import FallbackToBackend

            # One job runs in the calling thread, as with joblib's own backends.
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        lane = self._lane or "auto"
        if require == "sharedmem" or (prefer == "threads" and self._lane is None):
            lane = "thread"
        self.uses_threads = lane == "thread"
        executor = self._executor or _shared(n_jobs, self.inner_max_num_threads)
        self._view = executor.options(lane=lane)
        return n_jobs

    def submit(self, func: Any, callback: Any = None) -> Future:
        future = self._view.submit(func)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def _forget(self, future: Future) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def retrieve_result_callback(self, future: Future) -> Any:
        return future.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """A batch failed: cancel the batches that have not started (those running end,
        and joblib drops their results). The executor stays up for the next call."""
        with self._pending_lock:
            pending = list(self._pending)
        for future in pending:
            future.cancel()

    def terminate(self) -> None:
        """The end of a Parallel call: the shared executor stays up for the next one."""
        self._view = None
        self.reset_batch_stats()


_executors: dict[tuple[int, int | None], Executor] = {}
_executors_lock = threading.Lock()


def _shared(n_jobs: int, native_threads: int | None) -> Executor:
    """The executor shared by the Parallel calls with ``n_jobs`` jobs and that native
    thread cap; one of another size is shut down first (loky keeps one, too)."""
    key = (n_jobs, native_threads)
    with _executors_lock:
        executor = _executors.get(key)
        if executor is None:
            for other in _executors.values():
                other.shutdown(wait=True)
            _executors.clear()
            executor = _executors[key] = Executor(processes=n_jobs, threads=n_jobs,
                                                  native_threads=native_threads)
        return executor


def shutdown() -> None:
    """Shuts down the executor the backend's Parallel calls share, if there is one (a
    later call starts a new one)."""
    with _executors_lock:
        executors = list(_executors.values())
        _executors.clear()
    for executor in executors:
        executor.shutdown(wait=True)


def register() -> None:
    """Registers the backend with joblib as ``"multilane"`` (importing this module did)."""
    register_parallel_backend(NAME, MultilaneBackend)


register()
atexit.register(shutdown)
