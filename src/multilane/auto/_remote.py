"""What the auto lane runs in a worker process: the warm-up and process probes, and
chunks of calls (one after another, or many at once on the worker's threads).

A worker imports this module, not the lane: it needs only the probes' clock and the
unpickler. Importing the whole auto lane there cost each worker about 45 ms at its first
probe, which the probe's round trip then carried.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..buffers._serialize import loads
from ._probes import timed_probe

__all__ = ["load_probe", "loaded_probe", "run_at_once", "run_chunk"]

# Functions a probe brought, by their pickled bytes (see loaded_probe).
_loaded: dict[bytes, Any] = {}
_LOADED_MAX = 64


def _load(pickled: bytes) -> tuple[Any, float]:
    """The function a probe brought, and the seconds it took to load it here (unpickling
    imports its module, or rebuilds it by value); 0 if loaded before."""
    start = time.perf_counter()
    fn = _loaded.get(pickled)
    if fn is None:
        fn = loads(pickled)
        if len(_loaded) >= _LOADED_MAX:
            _loaded.clear()
        _loaded[pickled] = fn
    return fn, time.perf_counter() - start


def load_probe(pickled: bytes) -> float:
    """The warm-up probe: loads the function, and says how long that took. Set-up is
    paid once per worker: counted in a call's round trip, a module that builds a table at
    import read as "transport 0.2 s" per call, and computing work stayed inline; and the
    call a probe carries cannot return before it, so no call goes along."""
    return _load(pickled)[1]


def loaded_probe(pickled: bytes, args: tuple, kwargs: dict
                 ) -> tuple[Any, float, float, float, bool, bool, float]:
    """``timed_probe`` for a process probe, plus the set-up last: the seconds it took to
    load the function here, if this worker had not yet."""
    fn, setup = _load(pickled)
    return (*timed_probe(fn, args, kwargs), setup)


def run_chunk(fn: Any, calls: list) -> list:
    """The calls of a chunk, one after another; (True, result) or (False, exception)
    for each."""
    out = []
    for args, kwargs in calls:
        try:
            out.append((True, fn(*args, **kwargs)))
        except Exception as exc:
            out.append((False, exc))
    return out


_pool: Any = None  # the threads run_at_once runs calls on
_pool_lock = threading.Lock()


def run_at_once(fn: Any, calls: list, threads: int) -> list:
    """The calls of a chunk, up to ``threads`` at once on threads of this process (calls
    that mostly wait: their waits overlap, and each process has a GIL of its own for the
    rest); (True, result) or (False, exception) for each, in order."""
    from concurrent.futures import ThreadPoolExecutor  # only for waiting calls spread here

    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < threads:  # noqa: SLF001 (its size)
            old, _pool = _pool, ThreadPoolExecutor(threads, "multilane-at-once")
            if old is not None:
                old.shutdown(wait=False)
        pool = _pool

    def one(call: tuple) -> tuple[bool, Any]:
        try:
            return True, fn(*call[0], **call[1])
        except Exception as exc:
            return False, exc

    return list(pool.map(one, calls))
