"""What the parts of the process pool share: its limits, and the state each part reads.

``ProcessPoolExecutor`` is one object whose parts live in their own modules: submitting
(``_pool``), dispatching to workers (``_dispatch``), starting and losing workers
(``_workers``), collecting replies (``_collector``), and timeouts and forced cancels
(``_deadlines``). ``PoolState`` declares, once, the attributes and the methods one part
uses of another, so that each module reads (and type-checks) on its own. Everything it
declares is set up by ``ProcessPoolExecutor.__init__``; what holds the pool lock is said
where it matters.
"""

from __future__ import annotations

import collections
import threading
import weakref
from typing import Any

from ..._future import LaneFuture
from ._functions import FunctionCache
from ._records import PoolLock, Task, Worker

__all__ = ["HELP_SPIN_US", "INTERPRETER_EXITING", "LIVE", "MAX_DEPTH", "MAX_STARTUP_FAILURES",
           "MAX_STARTUP_KILLS", "MIN_DEPTH", "SETTLE_PATIENCE", "TARGET_QUEUED_NS", "PoolState"]

# How many worker deaths before READY, in a row, make the pool give up respawning.
MAX_STARTUP_FAILURES = 3
# The same for workers killed by a signal before they were ready: something outside the
# pool may be killing processes at random, so it takes more of them in a row.
MAX_STARTUP_KILLS = 10
# Bounds of the per-worker queue depth; the depth adapts to the measured task time.
MIN_DEPTH, MAX_DEPTH = 1, 16
TARGET_QUEUED_NS = 200_000  # keep about this much work queued ahead of each worker
# A caller blocked in result() drains replies itself for this long (GIL released, spinning)
# before it sleeps and leaves the work to the collector thread: it saves two thread
# wake-ups per round trip for short tasks and costs at most this much CPU for long ones.
HELP_SPIN_US = 150.0
SETTLE_PATIENCE = 0.05  # seconds between looks at a torn-down pool while a future is locked


class _Flag:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = False


INTERPRETER_EXITING = _Flag()  # set by the exit hook: no new work is taken after it
LIVE: weakref.WeakSet[Any] = weakref.WeakSet()  # pools whose collector still runs


class PoolState:
    """The attributes and cross-part methods of a process pool (see the module's text)."""

    _max_workers: int
    _max_tasks_per_child: int | None
    _concurrency: int  # calls a worker runs at once: 1, or a hybrid worker's many
    _initializer: tuple | None
    _init_settings: dict[str, Any]
    _init_payload: bytes
    _argv: list[str]
    _hub: Any  # multilane._core.Hub; None once the collector has finished
    _collector: threading.Thread
    _lock: PoolLock
    _collect_lock: threading.Lock  # taken before _lock, never while holding it
    _incoming: collections.deque[Task]  # handed off by a submit that found the lock taken
    _pending: collections.deque[Task]  # submitted, not yet sent to a worker
    _workers: dict[int, Worker]  # by slot
    _functions: FunctionCache
    _forgotten_regions: list[int]
    _deadlines: list[tuple[float, int, Task]]
    _next_deadline: float
    _timed: bool
    _depth: int
    _mean_task_ns: float
    _settling: LaneFuture | None
    _respawn: int
    _shutdown: bool
    _terminating: bool
    _broken: str | None
    _broken_cause: BaseException | None
    _startup_failures: int
    _startup_kills: int
    _completed: int
    _crashed: int
    _workers_started: int
    _workers_lost: int
    _recycled: int
    _killed: int
    _spin: Any  # _spin.HelpSpin: how long a waiting caller spins

    # Defined by one part, called by another.
    def _dispatch_locked(self) -> None:
        raise NotImplementedError

    def _absorb_locked(self) -> None:
        raise NotImplementedError

    def _reject_incoming_locked(self) -> None:
        raise NotImplementedError

    def _observe(self, elapsed_ns: float) -> None:
        raise NotImplementedError

    def _start_clock_locked(self, task: Task) -> None:
        raise NotImplementedError

    def _expire_locked(self) -> None:
        raise NotImplementedError

    def _spawn_worker(self) -> None:
        raise NotImplementedError

    def _respawn_workers(self) -> None:
        raise NotImplementedError

    def _handle_exit_locked(self, slot: int, running_task: int, exitcode: int, signum: int,
                            completions: list) -> int:
        raise NotImplementedError

    def _break_locked(self, message: str, cause: BaseException | None,
                      completions: list) -> None:
        raise NotImplementedError

    def _close_if_done_locked(self) -> bool:
        raise NotImplementedError

    def _collect(self) -> None:
        raise NotImplementedError

    def _finish(self, completions: list) -> None:
        raise NotImplementedError

    def _make_init_payload(self) -> bytes:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    def terminate(self) -> None:
        raise NotImplementedError
