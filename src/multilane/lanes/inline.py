"""The inline lane: the call runs in the caller, before ``submit`` returns.

For calls too small to be worth shipping anywhere, and for debugging. A call here cannot
be stopped, so it takes no timeout; a Ctrl-C in it reaches the caller, as in any code.
"""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import itertools
import types
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .._calls import call_retrying, describe, is_coroutine_function, keep_partial_results, settle
from .._future import LaneFuture
from .._options import TaskOptions, earns_retry
from ..errors import LaneError
from ._lane import LaneBase
from ._registry import cannot_stop

__all__ = ["InlineLane", "InlineStatistics"]


@dataclass(frozen=True)
class InlineStatistics:
    """A snapshot of the inline lane, from ``statistics()``."""

    calls: int  # run so far


class InlineLane(LaneBase):
    """Runs each call at once, in the thread that submits it."""

    def __init__(self) -> None:
        self._calls = 0
        self._shutdown = False

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> Future:
        self._check(fn, options)
        future = LaneFuture()
        future.set_running_or_notify_cancel()
        try:
            result = call_retrying(fn, args, kwargs, options, Exception)
        except Exception as exc:  # a Ctrl-C in the caller's own code goes to the caller
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def map_calls(self, fn: Any, items: Sequence[Any], single: bool, chunksize: int | None,
                  options: TaskOptions | None, caller_waits: bool) -> tuple[list[Future], bool]:
        """Every call at once, here, as a submit per item would run them, but as one
        chunk: a future per item costs several times a microsecond call."""
        if options is not None or is_coroutine_function(fn):
            return super().map_calls(fn, items, single, chunksize, options, caller_waits)
        self._check(fn, options)
        self._calls += len(items) - 1
        chunk = LaneFuture()
        chunk.set_running_or_notify_cancel()
        results: list = []
        calls = map(fn, items) if single else itertools.starmap(fn, items)
        error: Exception | None = None
        try:
            results.extend(calls)  # extend keeps what it had before a raise
        except Exception as exc:
            error = exc
        try:
            results = _settled(results)
        except Exception as exc:  # a coroutine returned before the error raised first
            error = exc
        else:
            if error is not None:
                keep_partial_results(error, results)
        if error is None:
            chunk.set_result(results)
            return [chunk], True
        # The results before the error are yielded, then it is raised; the calls after it
        # still run, as each item's own submit would have run them.
        chunk.set_exception(error)
        _run_rest(calls)
        return [chunk], True

    async def run(self, fn: Any, args: tuple, kwargs: dict,
                  options: TaskOptions | None = None) -> Any:
        """Runs right here, on the running loop: a coroutine function is awaited."""
        self._check(fn, options, awaited=True)
        retries, retry_on = (options.retries, options.retry_on) if options else (0, ())
        while True:
            try:
                result = fn(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result
            except Exception as exc:
                if earns_retry(exc, retries, retry_on):
                    retries -= 1
                    continue
                raise

    def _check(self, fn: Any, options: TaskOptions | None, awaited: bool = False) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        self._calls += 1
        if options is not None and options.timeout is not None:
            raise cannot_stop("inline")
        if not awaited and is_coroutine_function(fn) and _loop_running():
            raise LaneError(
                f"lane='inline' cannot run the coroutine function {describe(fn)} here: an "
                "event loop is already running in this thread; use "
                "`await ex.run(fn, ...)` on a view with lane='inline' to await it on this "
                "loop, or lane='async'")

    def statistics(self) -> InlineStatistics:
        return InlineStatistics(self._calls)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._shutdown = True  # nothing runs after submit returns: nothing to wait for


def _settled(results: list) -> list:
    """``results``, with any coroutine among them (returned by a plain function) run to
    its end, in order, as ``submit`` would have run it, but after the map's calls. One
    look at each type of result: a check per result would double a tiny call's cost."""
    if all(not issubclass(kind, _COROUTINES) for kind in set(map(type, results))):
        return results
    done: list = []
    values = iter(results)
    for value in values:  # a coroutine that raises ends the map's results there...
        try:
            done.append(settle(value))
        except Exception as exc:
            keep_partial_results(exc, done)
            _run_rest(values)  # ...but those after it still run, as their submits would
            raise
    return done


_COROUTINES = (types.CoroutineType, collections.abc.Coroutine)


def _run_rest(calls: Any) -> None:
    """Runs what is left of ``calls`` (an iterator of calls, or of their results), their
    outcomes unseen: a coroutine among them is run to its end, never left unawaited."""
    while True:
        try:
            for result in calls:
                settle(result)
            return
        except Exception:  # noqa: PERF203 -- each call's exception is its own
            continue


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
