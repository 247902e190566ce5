"""Settling a task's future from what its worker sent back, or from what the pool decided."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ... import _protocol as P
from ..._future import LaneFuture
from ...buffers._serialize import loads, loads_oob
from ...errors import RemoteTraceback, SerializationError, UnpicklingFailed
from ._records import Task

__all__ = [
    "blocks_received", "broken_error", "cancel_all", "complete", "decode_error", "failed_future",
]


def failed_future(error: BaseException) -> Future:
    """A future that failed before it was sent (its call could not be pickled)."""
    future = LaneFuture()
    future.set_running_or_notify_cancel()
    future.set_exception(error)
    return future


def cancel_all(futures: list[Future]) -> None:
    for future in futures:
        if future.cancel():
            future.set_running_or_notify_cancel()  # tells wait()/as_completed()


def broken_error(message: str, cause: BaseException | None) -> BrokenProcessPool:
    error = BrokenProcessPool(message)
    error.__cause__ = cause
    return error


def decode_error(flags: int, payload: bytes) -> BaseException:
    """The exception a worker sent, with its traceback text attached as ``__cause__``."""
    try:
        if flags & P.ERROR_BARE:
            text, type_name, tb = loads(payload)
            exc: BaseException = SerializationError(
                f"the task raised {type_name}, which could not be pickled: {text}")
        else:
            exc, tb = loads(payload)
    except BaseException as unpickling_error:  # the object's code may raise SystemExit too
        error = UnpicklingFailed(
            f"cannot unpickle the exception a task raised: {type(unpickling_error).__name__}: "
            f"{unpickling_error}")
        error.__cause__ = unpickling_error
        return error
    exc.__cause__ = RemoteTraceback(f'\n"""\n{tb}"""')  # type: ignore[arg-type]  # a str
    if flags & P.ERROR_DECODE:
        failed = UnpicklingFailed(f"the worker could not unpickle the call: "
                                  f"{type(exc).__name__}: {exc}")
        failed.__cause__ = exc
        failed.call_ran = False
        return failed
    return exc


def _reraise_interrupt(exc: BaseException) -> None:
    """Re-raises a KeyboardInterrupt caught while unpickling in the main thread, where it
    may be the user's Ctrl-C (a caller helping the pool); elsewhere it can only be the
    object's own doing, and stays with its future."""
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc  # its future is settled already


_received_blocks = False  # a result came in an attachment: see blocks_received()


def blocks_received() -> bool:
    """Whether a result ever came in an attachment (then a helping caller keeps released
    result blocks mapped while the worker runs)."""
    return _received_blocks


def complete(task: Task, kind: int, value: Any) -> None:
    global _received_blocks
    future = task.future
    task.payload = b""
    task.attachments = ()  # closes the memfds: the worker holds its own mappings, if any
    task.regions = ()
    try:
        if kind == P.RESULT:
            try:
                if value.attachments is not None:
                    _received_blocks = True
                result = loads_oob(value.payload, value.attachments)
            except BaseException as exc:  # unpickling runs the object's code: SystemExit too
                failed = UnpicklingFailed(f"cannot unpickle the return value of "
                                          f"{task.name()}: {type(exc).__name__}: {exc}")
                failed.__cause__ = exc
                future.set_exception(failed)
                _reraise_interrupt(exc)
            else:
                future.set_result(result)
        elif kind == P.ERROR:
            error = decode_error(value.flags, value.payload)
            future.set_exception(error)
            if isinstance(error, UnpicklingFailed) and error.__cause__ is not None:
                _reraise_interrupt(error.__cause__)
        else:  # BROKEN
            if future.done():
                return
            if not future.running():
                future.set_running_or_notify_cancel()
            future.set_exception(value)
    except Exception:  # InvalidStateError: cancelled meanwhile; nothing to report
        pass
