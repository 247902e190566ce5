"""The worker process: ``python -m multilane.worker``, started by a pool, never by hand.

A worker reads frames from its link (see ``_protocol``): INIT once, then FUNCTION
definitions and CALLs, running each call and sending back a RESULT or an ERROR, until
SHUTDOWN. It dies with its parent: PR_SET_PDEATHSIG is set when it is spawned, and a
thread here also exits the process when the parent's lifeline pipe reaches EOF.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

from . import _protocol as P
from ._calls import is_coroutine, is_coroutine_function, run_items
from ._core import settle_kept_mappings
from .buffers._serialize import dumps, dumps_oob, loads, loads_oob, outband, outband_items

_LIFELINE_EXIT = 70
# How long an idle worker spins for its next frame before it sleeps on the futex. Longer
# spins shave microseconds off a round trip but, on a machine of few cores, take CPU from
# the parent feeding the pool and cost pipelined throughput: this spin is kept short
# enough not to.
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
    import traceback  # on the first failure: most workers never need it

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    exc.__traceback__ = None  # tracebacks do not pickle; the text carries them
    try:
        return 0, dumps((exc, tb))
    except Exception as pickling_error:
        note = f"\n(and the exception did not pickle: {pickling_error!r})"
        bare = (repr(exc), type(exc).__qualname__, tb + note)
        return P.ERROR_BARE, dumps(bare)


class _BrokenFunction:
    """Stands in for a function that did not unpickle here: each call of it fails to
    decode, with the reason."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Loop:
    """The worker's event loop, made on first use: coroutine functions sent to a process
    worker run here. In a hybrid worker it runs in a thread of its own, so that many
    coroutines wait at once while the inner threads run plain functions."""

    def __init__(self, threaded: bool) -> None:
        self._threaded = threaded
        self._loop: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        # asyncio is imported here, with the first coroutine: most workers never run one,
        # and it is a third of a worker's start-up imports.
        from .lanes.loop import new_event_loop, start_loop_thread

        with self._lock:
            if self._loop is None:
                if self._threaded:
                    self._loop = start_loop_thread("multilane-loop")[1]
                else:
                    self._loop = new_event_loop()
            return self._loop

    def settle(self, value: Any) -> Any:
        """``value``, or what it returns when awaited if it is a coroutine."""
        if not is_coroutine(value):
            return value
        if self._threaded:
            import asyncio

            return asyncio.run_coroutine_threadsafe(value, self.get()).result()
        return self.get().run_until_complete(value)


def _call(fn: Any, flags: int, args: Any, kwargs: dict, loop: _Loop) -> Any:
    if flags & P.CALL_CHUNK:  # coroutine functions checked once per chunk, not per item
        settle = loop.settle if is_coroutine_function(fn) else None
        return outband_items(run_items(fn, args, bool(flags & P.CALL_CHUNK_SINGLE), settle))
    return loop.settle(fn(*args, **kwargs))


def _result_payload(result: Any) -> tuple[bytes, tuple]:
    """(pickle, attachments) for a task's return value."""
    try:
        data, attachments, _ = dumps_oob(outband(result))
        return data, attachments
    except Exception as exc:
        from .errors import SerializationError

        raise SerializationError(
            f"cannot pickle the return value ({type(result).__name__}): "
            f"{type(exc).__name__}: {exc}") from exc


def _start(endpoint: Any) -> dict | None:
    """Reads INIT, adopts the parent's sys.path, runs the initializer; the settings, or None
    if the worker must stop."""
    kind, _, _, _, payload, _ = endpoint.recv(None)
    if kind != P.INIT:
        print(f"multilane.worker: expected INIT, got frame kind {kind}", file=sys.stderr)
        return None
    settings = loads(payload)
    os.environ.update(settings["native_threads"])  # read when those libraries load
    sys.path[:] = settings["sys_path"]
    # As multiprocessing's spawn does: the parent's key, for its managers and Listeners.
    multiprocessing.current_process().authkey = settings["authkey"]
    if settings["initializer"] is not None:
        try:
            initializer, initargs = loads(settings["initializer"])
            initializer(*initargs)
        except BaseException as exc:
            # As the standard pool's worker does: a handler the initializer set up sees it.
            import logging

            logging.getLogger("concurrent.futures").critical("Exception in initializer:",
                                                             exc_info=True)
            # Flushes multiprocessing queues the initializer wrote to (what multiprocessing's
            # own children run at exit) before the parent, told, stops this process.
            util = sys.modules.get("multiprocessing.util")
            if util is not None:
                util._exit_function()  # noqa: SLF001
            flags, data = _error_payload(exc)
            endpoint.send(P.READY, 0, 0, P.READY_FAILED | flags, data)
            return None
    endpoint.send(P.READY, 0, os.getpid(), 0, b"")
    return settings


def _run(endpoint: Any) -> int:
    settings = _start(endpoint)
    if settings is None:
        return 1
    over_limit = _memory_check(settings.get("max_rss"))
    if settings.get("concurrency", 1) > 1:
        return _run_hybrid(endpoint, settings["concurrency"], over_limit)
    known = _Known()
    send = endpoint.send
    send_attached = endpoint.send_attached
    set_running = endpoint.set_running
    recv = endpoint.recv
    clock = time.perf_counter_ns
    loop = _Loop(threaded=False)
    while True:
        kind, task_id, aux, flags, payload, attachments = recv(None)
        if kind == P.CALL:
            set_running(task_id)
            start = clock()
            try:
                fn, args, kwargs = _decode_call(flags, aux, payload, attachments, known)
            except BaseException as exc:  # the call did not unpickle here
                eflags, data = _error_payload(exc)
                del exc
                send(P.ERROR, task_id, clock() - start, eflags | P.ERROR_DECODE, data)
                set_running(0)
                continue
            try:
                mapped = attachments is not None
                del attachments  # the mappings live as long as the arguments need them
                data, attachments = _result_payload(_call(fn, flags, args, kwargs, loop))
                del fn, args, kwargs  # releases the arguments' blocks before the reply
                retire = over_limit() if over_limit is not None else 0
                if attachments:
                    send_attached(P.RESULT, task_id, clock() - start, retire, data, attachments)
                else:
                    send(P.RESULT, task_id, clock() - start, retire, data)
                del data, attachments
                if mapped:  # off the reply's path: keep the blocks mapped for their next trip
                    settle_kept_mappings()
            except BaseException as exc:  # the task's own exception, SystemExit included
                eflags, data = _error_payload(exc)
                del exc
                retire = over_limit() if over_limit is not None else 0
                send(P.ERROR, task_id, clock() - start, eflags | retire, data)
            set_running(0)
        elif not _control(kind, aux, payload, attachments, known):
            return 0


class _Known:
    """What the parent sent once for many calls: functions by id, shared regions by id
    (each a list of read-only mapped buffers)."""

    def __init__(self) -> None:
        self.functions: dict[int, Any] = {}
        self.regions: dict[int, list] = {}


def _decode_call(flags: int, aux: int, payload: bytes, attachments: Any, known: _Known) -> tuple:
    """(function, args, kwargs) of a CALL frame."""
    regions = known.regions if flags & P.CALL_SHARED else None
    if flags & P.CALL_INLINE_FN:
        return loads_oob(payload, attachments, regions)
    args, kwargs = loads_oob(payload, attachments, regions)
    fn = known.functions[aux]
    if type(fn) is _BrokenFunction:
        raise fn.exc
    return fn, args, kwargs


def _control(kind: int, aux: int, payload: bytes, attachments: Any, known: _Known) -> bool:
    """Handles a frame that is not a CALL; False on SHUTDOWN."""
    if kind == P.FUNCTION:
        try:
            known.functions[aux] = loads(payload)
        except BaseException as exc:
            known.functions[aux] = _BrokenFunction(exc)
    elif kind == P.FORGET:
        known.functions.pop(aux, None)
    elif kind == P.SHARED:
        known.regions[aux] = attachments[0].map(readonly=True)
    elif kind == P.FORGET_SHARED:
        known.regions.pop(aux, None)
    return kind != P.SHUTDOWN


def _memory_check(max_rss: int | None) -> Any:
    """None without a limit; else a function returning REPLY_RETIRE once this process's
    resident memory exceeds ``max_rss`` bytes (checked after each task), else 0."""
    if not max_rss:
        return None
    page = os.sysconf("SC_PAGE_SIZE")

    def over_limit() -> int:
        with open("/proc/self/statm", "rb") as f:
            resident = int(f.read().split()[1]) * page
        return P.REPLY_RETIRE if resident > max_rss else 0

    return over_limit


def _run_hybrid(endpoint: Any, concurrency: int, over_limit: Any) -> int:
    """A hybrid worker: up to ``concurrency`` tasks at once, plain functions on inner
    threads and coroutine functions on the worker's event loop thread. Replies are sent
    under a lock: the reply ring has one producer at a time."""
    from concurrent.futures import ThreadPoolExecutor

    known = _Known()
    send_lock = threading.Lock()
    clock = time.perf_counter_ns
    loop = _Loop(threaded=True)
    threads = ThreadPoolExecutor(concurrency, thread_name_prefix="multilane-hybrid")

    def reply(task_id: int, start: int, result: Any = None,
              error: BaseException | None = None, decode: int = 0) -> None:
        attachments: tuple = ()
        if error is None:
            try:
                kind, flags = P.RESULT, 0
                data, attachments = _result_payload(result)
            except BaseException as exc:
                error = exc
        if error is not None:
            kind = P.ERROR
            flags, data = _error_payload(error)
            flags |= decode
        with send_lock:
            retire = over_limit() if over_limit is not None else 0
            if attachments:
                endpoint.send_attached(kind, task_id, clock() - start, flags | retire, data,
                                       attachments)
            else:
                endpoint.send(kind, task_id, clock() - start, flags | retire, data)

    def run_in_thread(task_id: int, start: int, fn: Any, flags: int, args: Any,
                      kwargs: dict) -> None:
        try:
            result = _call(fn, flags, args, kwargs, loop)
        except BaseException as exc:
            reply(task_id, start, error=exc)
        else:
            reply(task_id, start, result)

    async def run_on_loop(task_id: int, start: int, fn: Any, args: Any, kwargs: dict) -> None:
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            reply(task_id, start, error=exc)
        else:
            reply(task_id, start, result)

    try:
        while True:
            kind, task_id, aux, flags, payload, attachments = endpoint.recv(None)
            if kind != P.CALL:
                if not _control(kind, aux, payload, attachments, known):
                    return 0
                continue
            start = clock()
            try:
                fn, args, kwargs = _decode_call(flags, aux, payload, attachments, known)
                del attachments
            except BaseException as exc:  # the call did not unpickle here
                reply(task_id, start, error=exc, decode=P.ERROR_DECODE)
                continue
            if not flags & P.CALL_CHUNK and is_coroutine_function(fn):
                import asyncio

                asyncio.run_coroutine_threadsafe(
                    run_on_loop(task_id, start, fn, args, kwargs), loop.get())
            else:
                threads.submit(run_in_thread, task_id, start, fn, flags, args, kwargs)
    finally:
        threads.shutdown(wait=True)


def _raise_descriptor_limit() -> None:
    """Each result whose buffers the parent still uses keeps one descriptor open here (its
    arena block): allow as many as the system lets this process have."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    link_fd, hub_fd, sock_fd, lifeline_fd = P.parse_fds(argv)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _raise_descriptor_limit()
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
