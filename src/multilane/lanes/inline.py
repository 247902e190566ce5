"""The inline lane: the call runs in the caller, before ``submit`` returns.

For calls too small to be worth shipping anywhere, and for debugging. A call here cannot
be stopped, so it takes no timeout; a Ctrl-C in it reaches the caller, as in any code.
"""

from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .._calls import call_retrying, describe, is_coroutine_function
from .._future import LaneFuture
from .._options import TaskOptions
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

    async def run(self, fn: Any, args: tuple, kwargs: dict,
                  options: TaskOptions | None = None) -> Any:
        """Runs right here, on the running loop: a coroutine function is awaited."""
        self._check(fn, options, awaited=True)
        retries = options.retries if options is not None else 0
        while True:
            try:
                result = fn(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result
            except Exception as exc:
                if retries > 0 and options is not None and isinstance(exc, options.retry_on):
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


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
