"""The process and hybrid lanes: calls in pre-started worker processes.

Both are a :class:`multilane.ProcessPoolExecutor` seen through the lane protocol. A hybrid
worker runs many calls at once on inner threads and its own event loop, so I/O waits
overlap while sibling processes compute. A call past its timeout is stopped by killing its
worker, which the pool replaces; queued calls are not lost.
"""

from __future__ import annotations

from .._lane import LaneBase
from ._pool import ProcessPoolExecutor
from ._records import PoolStatistics

__all__ = ["ProcessLane"]


class ProcessLane(LaneBase):
    """A process pool as a lane. Its calls are the pool's own methods, bound once, so a
    call through the lane costs no extra Python frame."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self.submit = pool.submit_call  # type: ignore[method-assign]
        self.submit_chunk = pool.submit_chunk  # type: ignore[method-assign]
        self.map_calls = pool.map_calls  # type: ignore[method-assign]
        self.ready = pool.ready  # type: ignore[method-assign]
        self.preload = pool.preload  # type: ignore[method-assign]
        self.owns = pool.owns  # type: ignore[method-assign]
        self.cancel = pool.cancel  # type: ignore[method-assign]
        self.terminate = pool.terminate  # type: ignore[method-assign]

    def statistics(self) -> PoolStatistics:
        return self.pool.statistics()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __repr__(self) -> str:
        return f"<multilane process lane {self.pool!r}>"
