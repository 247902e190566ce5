"""The lanes of one executor: which exist, which have started, and which a call goes to.

Lanes are known by name and described by a :class:`LaneKind` (how to make one, and what
it accepts); each starts the first time a call needs it, so a program that only uses
threads never starts a process. Nothing here knows any lane by name: the executor fills
the registry, and the rules below read the kinds.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .._calls import describe, is_coroutine_function
from ..errors import LaneError
from ._lane import Lane

__all__ = ["LaneKind", "Lanes"]


class LaneKind(NamedTuple):
    """How to make a lane, and what it accepts."""

    make: Callable[[Lanes], Lane]
    coroutines_only: bool = False  # plain functions are refused (the event loop's lane)
    stoppable: bool = True  # a call can be given a timeout (its future fails at the end)
    routes: bool = False  # a policy over the other lanes: it places coroutines itself


class Lanes:
    """The registry: kinds by name, the lanes started so far, and the default lane.

    ``coroutine_lane`` is where a coroutine function goes when the call names no lane
    and the default lane does not route calls itself.
    """

    def __init__(self, kinds: Mapping[str, LaneKind], default: str,
                 coroutine_lane: str) -> None:
        self.kinds = dict(kinds)
        if default not in self.kinds:
            raise self.unknown(default)
        self.default = default
        self._coroutine_lane = coroutine_lane
        self._started: dict[str, Lane] = {}
        self._starting: dict[str, threading.Lock] = {}  # a lock per lane, for its start
        self._lock = threading.Lock()
        self.closed = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.kinds)

    def resolve(self, fn: Any, lane: str | None) -> str:
        """The lane for ``fn``, checked, with a clear error for every misuse."""
        if not callable(fn):
            raise not_callable(fn)
        if lane is None:
            lane = self.default
            if not self.kinds[lane].routes and is_coroutine_function(fn):
                return self._coroutine_lane
            return lane
        kind = self.kinds.get(lane)
        if kind is None:
            raise self.unknown(lane)
        if kind.coroutines_only and not is_coroutine_function(fn):
            raise plain_on_coroutine_lane(fn, lane)
        return lane

    def check(self, lane: str | None, timeout: float | None) -> None:
        """Refuses a lane name that does not exist, and a timeout for a lane that cannot
        stop its calls."""
        if lane is not None and lane not in self.kinds:
            raise self.unknown(lane)
        if timeout is not None and not self.kinds[lane or self.default].stoppable:
            raise cannot_stop(lane or self.default)

    def lane(self, name: str, internal: bool = False) -> Lane:
        """The lane ``name``, started if need be. After ``close()`` only ``internal``
        callers (a routing lane placing calls it accepted before) may start one."""
        if self.closed and not internal:
            raise RuntimeError("cannot schedule new futures after shutdown")
        started = self._started.get(name)
        if started is not None:
            return started
        with self._lock:
            starting = self._starting.setdefault(name, threading.Lock())
        # One lane at a time starts under its own lock: a cluster that takes seconds to
        # connect does not hold up the first call of another lane.
        with starting:
            if self.closed and not internal:
                raise RuntimeError("cannot schedule new futures after shutdown")
            started = self._started.get(name)
            if started is None:
                started = self.kinds[name].make(self)
                with self._lock:
                    late = self.closed and not internal
                    if not late:
                        self._started[name] = started
                if late:  # closed while it started: the executor's shutdown missed it
                    started.shutdown(wait=True)
                    raise RuntimeError("cannot schedule new futures after shutdown")
            return started

    def get(self, name: str) -> Lane | None:
        """The lane ``name`` if it has started."""
        return self._started.get(name)

    def ready(self, name: str) -> bool:
        started = self._started.get(name)
        return started is not None and started.ready()

    def started(self) -> list[tuple[str, Lane]]:
        """(name, lane) of the started lanes, routing lanes first (they place calls on
        the others, so they must stop first), then in the order they started."""
        with self._lock:
            items = list(self._started.items())
        return sorted(items, key=lambda item: not self.kinds[item[0]].routes)

    def close(self) -> None:
        with self._lock:
            self.closed = True

    def unknown(self, lane: object) -> LaneError:
        return unknown_lane(lane, tuple(self.kinds))


def unknown_lane(lane: object, names: tuple[str, ...]) -> LaneError:
    valid = ", ".join(repr(name) for name in names)
    close = difflib.get_close_matches(str(lane), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return LaneError(f"unknown lane {lane!r}{hint}; the lanes are {valid}")


def cannot_stop(lane: str) -> LaneError:
    return LaneError(f"lane={lane!r} runs the call in the caller, which cannot be stopped: "
                     "use lane='thread' or lane='process' for a timeout")


def plain_on_coroutine_lane(fn: object, lane: str) -> LaneError:
    return LaneError(
        f"{describe(fn)} is a plain function, and lane={lane!r} runs coroutine functions "
        "(async def) on an event loop, where blocking code would stall every other task: "
        "use lane='thread' for blocking I/O, lane='process' for computing, or make it an "
        "async def")


def not_callable(fn: object) -> TypeError:
    if inspect.iscoroutine(fn):
        name = getattr(fn, "__qualname__", "the coroutine")
        fn.close()  # it will never run: no "never awaited" warning on top of this error
        return TypeError(
            f"{name}(...) is a coroutine object, not a coroutine function: pass the function "
            f"and its arguments, as in submit({name}, arg), not submit({name}(arg))")
    return TypeError(f"{fn!r} is not callable")
