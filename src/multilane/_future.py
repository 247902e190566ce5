"""multilane's Future: a real ``concurrent.futures.Future``, cheaper to create.

A pipelined ``submit`` creates one future per task, and a program may hold 100k of them.
The standard future allocates six objects the cyclic GC tracks (the future, a
``threading.Condition`` with its RLock and deque, two lists); with that many alive, the
GC's passes over them are a large part of the cost of a pipelined submit. This one
allocates two (itself and its lock). The condition and the lists are made on first use,
under the future's lock, so a future that is only submitted and finished never makes
them; ``wait()``, ``as_completed()``, callbacks and a blocking ``result()`` make them as
they need them.

Behaviour is the standard future's wherever a caller can observe it (the tests use the
standard one as the oracle). The fast paths below handle the common transitions and hand
anything unusual (cancelled, already finished) to the base implementation.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from _thread import RLock as _RLock
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any

from ._calls import DONE as _DONE
from ._calls import keep_partial_results, partial_results
from ._interrupts import SLICE_S

__all__ = ["LaneFuture", "gather", "interrupted", "iterate_results", "note_interrupt",
           "settle_quietly"]


_interrupted = False  # a KeyboardInterrupt reached a caller waiting on one of our futures


def note_interrupt() -> None:
    global _interrupted
    _interrupted = True


def interrupted() -> bool:
    """True once a caller waiting on a multilane future was interrupted by Ctrl-C, or once
    the program is dying of a KeyboardInterrupt, wherever it was waiting (its traceback is
    printed, and the exception kept in ``sys.last_value``, before the exit hooks run): the
    exit hooks then stop the pools and lanes instead of waiting for their work."""
    return _interrupted or isinstance(getattr(sys, "last_value", None), KeyboardInterrupt)


class _Condition(threading.Condition):
    """A ``threading.Condition`` over a given RLock, made with less than the standard one.

    ``acquire`` and ``release`` are the lock's own (C) methods, as in the standard one:
    ``concurrent.futures.as_completed`` and ``wait`` acquire every future's condition in
    a loop before their ``try``, and a Ctrl-C landing between two acquisitions leaves the
    earlier ones held for good (the standard library has the same window). Python code in
    that loop widens it, and the pool's collector, settling such a future, would block on
    its lock: it gives up once the pool is torn down (see ``Collector._can_settle``).
    The LaneFuture property that makes the condition on first use still runs Python code
    there; made eagerly, the condition would cost every future four more objects for the
    garbage collector to track.
    """

    def __init__(self, lock: Any) -> None:  # noqa: D107 -- deliberately not calling the base
        self._lock = lock
        self.acquire = lock.acquire  # type: ignore[method-assign]
        self.release = lock.release  # type: ignore[method-assign]
        self._waiters: Any = collections.deque()

    # threading.Condition's protocol with its lock: the RLock's own methods of these names.
    def _release_save(self) -> Any:
        return self._lock._release_save()  # noqa: SLF001

    def _acquire_restore(self, state: Any) -> None:
        self._lock._acquire_restore(state)  # noqa: SLF001

    def _is_owned(self) -> bool:
        return self._lock._is_owned()  # noqa: SLF001


# The base's attributes that this class makes lazily. If a CPython's Future.__init__ sets
# anything else, LaneFuture runs the standard constructor and only adds its own fields.
_BASE_ATTRS = {"_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}
_LAZY = set(vars(Future())) == _BASE_ATTRS
_UNSETTLED = ("PENDING", "RUNNING")


class LaneFuture(Future):
    """A standard Future whose ``result()`` can first help the lane that runs it.

    ``helper``, when set, is an object with ``help(future, timeout)``: a process pool
    drains its reply rings in the caller's thread for a moment, so a short task's result
    reaches the caller without waking two threads. A KeyboardInterrupt raised while a
    caller waits is remembered, so the pools are torn down at exit instead of drained.
    """

    # No __slots__: on 3.13 they make CPython materialise the instance dict, one more
    # object for the GC; plain attributes stay in the inline values on 3.11-3.13.

    if _LAZY:
        def __init__(self) -> None:  # noqa: D107 -- the base's fields, made lazily
            self._lk = _RLock()
            self._cond: _Condition | None = None
            self._w: list[Any] | None = None
            self._cb: list[Any] | None = None
            self.helper: Any = None
            self._state = "PENDING"
            self._result = None
            self._exception = None

        def _make(self, name: str, factory: Any) -> Any:
            with self._lk:  # two threads asking at once must get the same object
                value = getattr(self, name)
                if value is None:
                    value = factory()
                    setattr(self, name, value)
                return value

        # The base class reads these three attributes; each is made on first use.
        @property
        def _condition(self) -> _Condition:  # type: ignore[override]
            cond = self._cond
            return cond if cond is not None else self._make("_cond",
                                                            lambda: _Condition(self._lk))

        @property
        def _waiters(self) -> list[Any]:  # type: ignore[override]
            waiters = self._w
            return waiters if waiters is not None else self._make("_w", list)

        @property
        def _done_callbacks(self) -> list[Any]:
            callbacks = self._cb
            return callbacks if callbacks is not None else self._make("_cb", list)

        def set_running_or_notify_cancel(self) -> bool:
            with self._lk:
                if self._state == "PENDING":
                    self._state = "RUNNING"
                    return True
                if self._state == "CANCELLED":
                    self._state = "CANCELLED_AND_NOTIFIED"
                    if self._w:
                        for waiter in self._w:
                            waiter.add_cancelled(self)
                    return False
            return super().set_running_or_notify_cancel()  # raises as the base does

        def cancel(self) -> bool:
            # Without making the condition and the lists: a pool torn down by Ctrl-C
            # cancels every queued task at once, perhaps 100k of them, and making the
            # condition and the lists for each would slow that teardown by an order of
            # magnitude, more under load.
            with self._lk:
                state = self._state
                if state != "PENDING":
                    return state == "CANCELLED" or state == "CANCELLED_AND_NOTIFIED"
                self._state = "CANCELLED"
                cond = self._cond
                if cond is not None and cond._waiters:  # noqa: SLF001  # our _Condition
                    cond.notify_all()
            if self._cb:
                self._invoke_callbacks()  # type: ignore[attr-defined]
            return True

        def set_result(self, result: Any) -> None:
            with self._lk:
                fast = self._state == "RUNNING" or self._state == "PENDING"
                if fast:
                    self._result = result
                    self._state = "FINISHED"
                    if self._w:
                        for waiter in self._w:
                            waiter.add_result(self)
                    cond = self._cond
                    if cond is not None and cond._waiters:  # noqa: SLF001  # our _Condition
                        cond.notify_all()
            if not fast:
                super().set_result(result)  # raises InvalidStateError as the base does
            elif self._cb:
                self._invoke_callbacks()  # type: ignore[attr-defined]
    else:  # pragma: no cover -- a CPython whose Future has grown new fields
        def __init__(self) -> None:  # noqa: D107
            super().__init__()
            self._lk = self._condition._lock  # noqa: SLF001  # the base's RLock
            self.helper = None

    def wait_in_slices(self) -> None:
        """Waits until the future is done, in slices a Ctrl-C cannot fall between: one
        landing just before the sleep would otherwise be seen only when the future
        settles (see _interrupts; it hung a clean-clone run once, on 3.13, waiting on a
        thread-lane future). The state is looked at after every slice: a notify that
        comes as a slice times out is consumed, and a wait that trusted its return
        value would sleep on (auto_eval's wait_compute workload hung so, 3 runs in 8)."""
        if self._state not in _UNSETTLED:
            return
        condition = self._condition
        with condition:
            while self._state in _UNSETTLED:
                condition.wait(SLICE_S)

    def lock_free_within(self, seconds: float) -> bool:
        """True once no other thread holds this future's lock (it is not kept), False if
        one still does after ``seconds``: a Ctrl-C can leave it held for good by the
        interrupted thread (see _Condition)."""
        lock = self._lk
        if not lock.acquire(True, seconds):
            return False
        lock.release()
        return True

    def held_by_this_thread(self) -> bool:
        """True if the calling thread holds this future's lock (a Ctrl-C can leave it so):
        another thread waiting to settle the future then waits for this one."""
        return self._lk._is_owned()  # type: ignore[attr-defined]  # noqa: SLF001

    def cancel_running(self) -> bool:
        """Cancels even a running future (its call is being stopped); False if finished."""
        with self._lk:
            if self._state not in ("PENDING", "RUNNING"):
                return self._state in ("CANCELLED", "CANCELLED_AND_NOTIFIED")
            self._state = "CANCELLED_AND_NOTIFIED"
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True

    def result(self, timeout: float | None = None) -> Any:
        # Finished without an exception: _result was written before _state, under the GIL.
        if self._state == "FINISHED" and self._exception is None:
            return self._result
        helper = self.helper
        try:
            if helper is not None and not self.done():
                helper.help(self, timeout)
            if timeout is None:
                self.wait_in_slices()
            return super().result(timeout)
        except KeyboardInterrupt as exc:
            if exc is not self._exception:  # not the task's own outcome: a Ctrl-C here
                note_interrupt()
            raise

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            if timeout is None:
                self.wait_in_slices()
            return super().exception(timeout)
        except KeyboardInterrupt:  # exception() returns the task's own; this is a Ctrl-C
            note_interrupt()
            raise


def iterate_results(futures: list[Future], end_time: float | None) -> Iterator[Any]:
    """Yields results in order, cancelling what is left if the consumer stops early. A
    chunk that failed part way yields the results before the failure (see run_items)."""
    futures.reverse()
    try:
        while futures:
            future = futures[-1]
            try:
                if end_time is None:
                    value = future.result()
                else:
                    value = future.result(end_time - time.monotonic())
            except Exception as exc:
                done = partial_results(exc)
                if done is None:
                    raise
                futures.pop()
                yield done
                raise
            futures.pop()
            del future
            # Nothing of this frame refers to the result while the consumer holds it (it
            # may be freed as soon as the consumer lets it go, as with the standard map).
            box = [value]
            del value
            yield box.pop()
    except KeyboardInterrupt as exc:
        if not (futures and _outcome_is(futures[-1], exc)):  # a Ctrl-C, not the task's own
            note_interrupt()
        raise
    finally:
        for future in futures:
            future.cancel()


def _outcome_is(future: Future, exc: BaseException) -> bool:
    """Whether ``exc`` is what ``future``'s task raised."""
    return future.done() and not future.cancelled() and future.exception(0) is exc


def settle_quietly(future: Future, result: Any = None, error: BaseException | None = None) -> None:
    """Settles ``future`` unless it is already done (cancelled meanwhile, timed out, or
    cancelled by force while its call ran)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


def gather(futures: Sequence[Future], piece: Future | None = None,
           concatenate: bool = False) -> Future:
    """A future (``piece``, or a new one) for the list of the results of ``futures``
    once all are done, or the first exception in their order; cancelling it cancels
    those not started. With ``concatenate`` each result is a list (a chunk's) and the
    piece gets them as one list; an exception then carries every result before it, as
    a chunk's does (see run_items); without it, the results before an exception are
    carried so too."""
    if piece is None:
        piece = LaneFuture()
    if all(future.done() for future in futures):  # run by the caller, say
        _settle_gathered(piece, futures, concatenate)
        return piece
    left = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Any) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        _settle_gathered(piece, futures, concatenate)

    def cancelled(_: Any) -> None:
        if piece.cancelled():
            for future in futures:
                future.cancel()

    piece.add_done_callback(cancelled)
    for future in futures:
        future.add_done_callback(one_done)
    return piece


def _settle_gathered(piece: Future, futures: Sequence[Future], concatenate: bool) -> None:
    values: list = []
    for future in futures:
        if future.cancelled():
            settle_quietly(piece, error=CancelledError())
            return
        error = future.exception()
        if error is not None:
            if concatenate:
                values.extend(partial_results(error) or ())
                keep_partial_results(error, values)
            elif _DONE not in error.__dict__:
                # The results of the calls before it, as a chunk's exception carries them
                # (a map yields them before it raises): a segment of calls run one by one
                # on threads lost them, and its map yielded 266 results of 295.
                keep_partial_results(error, values)
            settle_quietly(piece, error=error)
            return
        if concatenate:
            values.extend(future.result())
        else:
            values.append(future.result())
    settle_quietly(piece, values)
