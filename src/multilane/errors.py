"""Exceptions raised by multilane, each also a subclass of the standard class users catch."""

from __future__ import annotations

import pickle
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

__all__ = [
    "Error",
    "LaneError",
    "RemoteTraceback",
    "SerializationError",
    "TaskTimeout",
    "UnpicklingFailed",
    "WorkerCrashed",
]


class Error(Exception):
    """Base class of every exception multilane raises itself."""


class LaneError(Error, ValueError):
    """A task was sent to a lane that does not exist or cannot run it.

    The message names the valid lanes, or says which lane to use instead (a plain function
    sent to the async lane, for instance). A ``ValueError``.
    """


class WorkerCrashed(Error, BrokenProcessPool):
    """The worker process running a task died before the task finished.

    Raised by the task's future. Only the task that was running is affected: the pool
    replaces the worker and keeps going. It subclasses ``BrokenProcessPool``, so code
    written for ``concurrent.futures`` still catches it.

    Attributes: ``pid``, ``exitcode`` (``None`` if killed by a signal), ``signal``
    (``None`` if it exited).
    """

    def __init__(self, message: str, *, pid: int = 0, exitcode: int | None = None,
                 signal: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.signal = signal

    def __reduce__(self):  # keep the attributes through pickling
        return (_rebuild_worker_crashed, (self.args[0], self.pid, self.exitcode, self.signal))


def _rebuild_worker_crashed(message, pid, exitcode, signal):
    return WorkerCrashed(message, pid=pid, exitcode=exitcode, signal=signal)


class TaskTimeout(Error, TimeoutError):
    """A task ran longer than the ``timeout`` it was submitted with.

    A process task is stopped by killing its worker, which the pool replaces; other tasks
    are not affected (on the hybrid lane, the calls running beside it in that worker fail
    with :class:`WorkerCrashed`). A coroutine is cancelled. A thread cannot be stopped:
    its future fails with this error and the message says the call runs on.
    """


class SerializationError(Error, pickle.PicklingError, TypeError):
    """An object could not be pickled or unpickled to cross a process boundary.

    Raised by the future of a call whose argument cannot be pickled (the message names
    the argument), and by a future whose return value or exception could not cross back
    (:class:`UnpicklingFailed`, a subclass, when it could not be unpickled). A
    ``TypeError`` and a ``pickle.PicklingError`` too, as the standard library raises one
    or the other.
    """


class UnpicklingFailed(SerializationError, BrokenProcessPool):
    """A call could not be unpickled in its worker, or its result or exception in the
    parent.

    Raised by that task's future only: the standard pool breaks for good then (hence the
    ``BrokenProcessPool`` base, which existing ``except`` clauses catch); here the other
    tasks go on. ``__cause__`` is the exception the unpickling raised.
    """

    #: False if the worker could not unpickle the call itself: then it never ran.
    call_ran: bool = True


# The standard executor's own class, so code that looks for it finds it: ``.tb`` is the
# traceback text formatted in the worker; it is set as the ``__cause__`` of the exception.
RemoteTraceback = _RemoteTraceback
