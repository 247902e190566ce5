"""Per-task options: what a call may be given besides its own arguments.

They never travel in the call's keywords (those belong to the function): a caller sets
them on a view, ``executor.options(timeout=30, retries=2)``, and every lane receives them
as one ``TaskOptions`` record, or ``None`` when all are defaults (the fast path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["KEEP", "TaskOptions", "changed_options", "earns_retry", "map_chunksize",
           "task_options"]

KEEP: Any = object()  # an option the caller did not name: the one it had stays


class TaskOptions(NamedTuple):
    """What a lane needs to know of a call besides the call itself."""

    timeout: float | None = None  # seconds the call may run once it has started
    retries: int = 0  # re-runs after its worker crashed, or it raised one of retry_on
    retry_on: tuple[type[BaseException], ...] = ()  # exception types that earn a re-run
    # How messages name the call, when the function a lane runs is not the user's (the
    # auto lane runs a timing wrapper around it); None: the function's own name.
    label: str | None = None


def task_options(timeout: Any = None, retries: Any = 0, retry_on: Any = (),
                 label: str | None = None) -> TaskOptions | None:
    """Checked options, or None when they are all defaults.

    Raises ``ValueError`` for a timeout that is not a positive number of seconds or a
    negative retry count, ``TypeError`` for a ``retry_on`` that is not an exception type
    or a tuple of them.
    """
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        timeout = float(timeout)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, not {retries!r}")
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
        raise TypeError(f"retry_on must be an exception type or a tuple of them, not "
                        f"{retry_on!r}")
    if timeout is None and not retries and not retry_on and label is None:
        return None
    return TaskOptions(timeout, retries, retry_on, label)


def changed_options(old: TaskOptions | None, timeout: Any = KEEP, retries: Any = KEEP,
                    retry_on: Any = KEEP) -> TaskOptions | None:
    """``old`` (None: the defaults) with the options named changed, checked as by
    ``task_options``."""
    old = old or TaskOptions()
    return task_options(old.timeout if timeout is KEEP else timeout,
                        old.retries if retries is KEEP else retries,
                        old.retry_on if retry_on is KEEP else retry_on)


def earns_retry(error: BaseException | None, retries_left: int,
                retry_on: tuple[type[BaseException], ...], lost_worker: bool = False) -> bool:
    """The one retry rule of every lane: a call that failed runs again while it has
    retries left, if its worker was lost (``lost_worker``) or it raised one of
    ``retry_on``."""
    return retries_left > 0 and (lost_worker or isinstance(error, retry_on))


def map_chunksize(chunksize: int | None, options: TaskOptions | None,
                  automatic: Callable[[], int]) -> int:
    """A map's items per task on a lane that chunks: the caller's ``chunksize`` (at least
    1), else one item per task when the calls have a timeout (a timeout is per call unless
    the caller chunks), else the lane's ``automatic`` choice."""
    if chunksize is not None:
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        return chunksize
    if options is not None and options.timeout is not None:
        return 1
    return automatic()
