"""The protocol every lane implements, and what most lanes share.

A lane runs calls somewhere (a process, a thread, an event loop, the caller) and hands
back standard futures. :class:`multilane.Executor` reaches every lane through this
protocol only; the auto lane, a policy over the other lanes, implements it too.

Semantics are ``concurrent.futures``': a future cancelled before its call starts is
skipped; ``shutdown(wait=True)`` lets every submitted call finish; ``cancel_futures``
cancels those that have not started.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from .._calls import calls_of
from .._future import gather, interrupted
from .._options import TaskOptions

__all__ = ["Lane", "LaneBase", "track_for_exit"]


@runtime_checkable
class Lane(Protocol):
    """What :class:`multilane.Executor` asks of a lane."""

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> Future:
        """Schedules ``fn(*args, **kwargs)``; ``options`` (or None for the defaults) say
        how long it may run and how often it is retried."""

    def submit_chunk(self, fn: Any, items: Sequence[Any], start: int, stop: int,
                     single: bool, options: TaskOptions | None = None) -> Future:
        """One future whose result is the list of ``fn`` over ``items[start:stop]``
        (single arguments, or argument tuples when ``single`` is false)."""

    def map_calls(self, fn: Any, items: Sequence[Any], single: bool, chunksize: int | None,
                  options: TaskOptions | None, caller_waits: bool) -> tuple[list[Future], bool]:
        """A map's futures in order, and whether each one's result is a list of results
        (a chunk) rather than one result. ``caller_waits``: the caller blocks on the
        results (``map``), so a lane may run some calls in its thread."""

    async def run(self, fn: Any, args: tuple, kwargs: dict,
                  options: TaskOptions | None = None) -> Any:
        """The call's result, awaited from a running event loop."""

    def ready(self) -> bool:
        """True once the lane can run a call without first starting something."""

    def preload(self, fn: Any) -> None:
        """Prepares to run calls of ``fn`` (a process lane's workers load it now), so its
        one-time set-up is not paid by a call that is being timed."""

    def queued(self) -> int:
        """Calls accepted and not started yet."""

    def widen(self, calls: int) -> int:
        """Lets up to ``calls`` calls run at once, where the lane can grow (the thread
        lane, within the limit it was given); how many run at once now."""

    def owns(self, future: Future) -> bool:
        """True if ``future`` is running or queued here."""

    def cancel(self, future: Future, force: bool = False) -> bool:
        """``future.cancel()``; with ``force``, also stop the call if the lane can."""

    def statistics(self) -> Any:
        """A frozen snapshot of the lane's counters."""

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stops accepting calls; with ``wait``, returns once the submitted ones are done."""

    def terminate(self) -> None:
        """Stops now: calls not started are cancelled, running ones stopped if possible."""


class LaneBase:
    """Defaults for the protocol's methods that most lanes share: a chunk or a map is a
    call per item; nothing can be stopped once running."""

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> Future:
        raise NotImplementedError

    def submit_chunk(self, fn: Any, items: Sequence[Any], start: int, stop: int,
                     single: bool, options: TaskOptions | None = None) -> Future:
        empty: dict[str, Any] = {}
        return gather([self.submit(fn, args, empty, options)
                       for args in calls_of(items, start, stop, single)])

    def map_calls(self, fn: Any, items: Sequence[Any], single: bool, chunksize: int | None,
                  options: TaskOptions | None, caller_waits: bool) -> tuple[list[Future], bool]:
        # chunksize is for process lanes; here, as in ThreadPoolExecutor, each item is a task.
        submit = self.submit
        empty: dict[str, Any] = {}
        if single:
            return [submit(fn, (item,), empty, options) for item in items], False
        return [submit(fn, args, empty, options) for args in items], False

    async def run(self, fn: Any, args: tuple, kwargs: dict,
                  options: TaskOptions | None = None) -> Any:
        return await asyncio.wrap_future(self.submit(fn, args, kwargs, options))

    def ready(self) -> bool:
        return True

    def preload(self, fn: Any) -> None:
        pass  # nothing to load: the function is already here

    def queued(self) -> int:
        return 0

    def widen(self, calls: int) -> int:
        return calls  # no fixed limit of its own

    def owns(self, future: Future) -> bool:
        return False

    def cancel(self, future: Future, force: bool = False) -> bool:
        return future.cancel()

    def terminate(self) -> None:
        self.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        raise NotImplementedError


_live: weakref.WeakSet[Any] = weakref.WeakSet()


def track_for_exit(lane: Any) -> None:
    """Has ``lane`` drained at interpreter exit like the standard executors (or, after a
    Ctrl-C reached a waiting caller, terminated: nothing is waited for)."""
    _live.add(lane)


def _at_exit() -> None:
    for lane in list(_live):
        if interrupted():
            lane.terminate()
        else:
            lane.shutdown(wait=True)


# As concurrent.futures does: run before the interpreter joins non-daemon threads.
threading._register_atexit(_at_exit)  # type: ignore[attr-defined]  # noqa: SLF001
