"""Running one call in this thread: its coroutine settled, retried as its options say.

Shared by the thread and inline lanes and by the workers, which run calls the same way.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

from ._options import TaskOptions

__all__ = ["call_retrying", "is_coroutine", "settle"]


def call_retrying(fn: Any, args: tuple, kwargs: dict, options: TaskOptions | None,
                  retryable: type[BaseException] = BaseException) -> Any:
    """``fn(*args, **kwargs)`` (a coroutine run to its end), run again while it raises a
    ``retryable`` of ``options.retry_on`` and retries are left; the last exception
    propagates."""
    retries = options.retries if options is not None else 0
    while True:
        try:
            return settle(fn(*args, **kwargs))
        except retryable as exc:
            if retries > 0 and options is not None and isinstance(exc, options.retry_on):
                retries -= 1
                continue
            raise


_plain_types: set[type] = set()  # result types known not to be coroutines


def is_coroutine(value: Any) -> bool:
    """``asyncio.iscoroutine``, with the answer for plain types remembered: every call's
    result on the thread lane and in a worker goes through here."""
    kind = type(value)
    if kind is types.CoroutineType:
        return True
    if kind in _plain_types:
        return False
    if asyncio.iscoroutine(value):  # e.g. a Cython coroutine: a Coroutine, not CoroutineType
        return True
    _plain_types.add(kind)
    return False


def settle(value: Any) -> Any:
    """``value``, or what it returns when run if it is a coroutine (a coroutine function
    sent to the thread lane runs on a loop of its own, in that thread)."""
    return asyncio.run(value) if is_coroutine(value) else value
