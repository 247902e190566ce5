"""The worker process: ``python -m multilane.worker``, started by a pool, never by hand.

A worker reads frames from its link (see ``_protocol``): INIT once, then FUNCTION
definitions and CALLs, running each call and sending back a RESULT or an ERROR, until
SHUTDOWN. It dies with its parent: PR_SET_PDEATHSIG is set when it is spawned, and a
thread here also exits the process when the parent's lifeline pipe reaches EOF.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from . import _protocol as P
from ._serialize import dumps, loads

_LIFELINE_EXIT = 70
# How long an idle worker spins for its next frame before it sleeps on the futex. Longer
# spins shave microseconds off a round trip but, on a 2-core machine, take CPU from the
# parent feeding the pool (measured: 50 us cost 20% of pipelined throughput, 10 us none).
_SPIN_US = 10.0


def _watch_lifeline(fd: int) -> None:
    """Exits the process when the parent's end of the lifeline pipe closes."""
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    os._exit(_LIFELINE_EXIT)


def _error_payload(exc: BaseException) -> tuple[int, bytes]:
    """(flags, payload) for an exception: pickled with its traceback text, or described."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    exc.__traceback__ = None  # tracebacks do not pickle; the text carries them
    try:
        return 0, dumps((exc, tb))
    except Exception as pickling_error:
        note = f"\n(and the exception did not pickle: {pickling_error!r})"
        bare = (repr(exc), type(exc).__qualname__, tb + note)
        return P.ERROR_BARE, dumps(bare)


class _BrokenFunction:
    """Stands in for a function that did not unpickle here; raises the reason when called."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


def _run(endpoint: Any) -> int:
    kind, _, _, _, payload = endpoint.recv(None)
    if kind != P.INIT:
        print(f"multilane.worker: expected INIT, got frame kind {kind}", file=sys.stderr)
        return 2
    settings = loads(payload)
    sys.path[:] = settings["sys_path"]
    if settings["initializer"] is not None:
        try:
            initializer, initargs = loads(settings["initializer"])
            initializer(*initargs)
        except BaseException as exc:
            flags, data = _error_payload(exc)
            endpoint.send(P.READY, 0, 0, P.READY_FAILED | flags, data)
            return 1
    endpoint.send(P.READY, 0, os.getpid(), 0, b"")

    functions: dict[int, Any] = {}
    send = endpoint.send
    set_running = endpoint.set_running
    recv = endpoint.recv
    clock = time.perf_counter_ns
    while True:
        kind, task_id, aux, flags, payload = recv(None)
        if kind == P.CALL:
            set_running(task_id)
            start = clock()
            try:
                if flags & P.CALL_INLINE_FN:
                    fn, args, kwargs = loads(payload)
                else:
                    fn = functions[aux]
                    args, kwargs = loads(payload)
                if flags & P.CALL_CHUNK_SINGLE:
                    result = [fn(item) for item in args]
                elif flags & P.CALL_CHUNK:
                    result = [fn(*item) for item in args]
                else:
                    result = fn(*args, **kwargs)
                try:
                    data = dumps(result)
                except Exception as exc:
                    from .errors import SerializationError

                    raise SerializationError(
                        f"cannot pickle the return value ({type(result).__name__}): "
                        f"{type(exc).__name__}: {exc}") from exc
                del result
                send(P.RESULT, task_id, clock() - start, 0, data)
            except BaseException as exc:  # the task's own exception, SystemExit included
                eflags, data = _error_payload(exc)
                del exc
                send(P.ERROR, task_id, clock() - start, eflags, data)
            set_running(0)
        elif kind == P.FUNCTION:
            try:
                functions[aux] = loads(payload)
            except BaseException as exc:
                functions[aux] = _BrokenFunction(exc)
        elif kind == P.FORGET:
            functions.pop(aux, None)
        elif kind == P.SHUTDOWN:
            return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    link_fd, hub_fd, sock_fd, lifeline_fd = P.parse_fds(argv)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_lifeline, args=(lifeline_fd,), name="multilane-lifeline",
                     daemon=True).start()
    from ._core import Endpoint

    endpoint = Endpoint(link_fd, hub_fd, sock_fd, _SPIN_US)
    code = _run(endpoint)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
