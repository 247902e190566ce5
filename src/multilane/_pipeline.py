"""``multilane.Pipeline``: stages, each on its own lane, joined by bounded queues.

    pipe = (multilane.Pipeline(ex)
            .map(fetch, lane="async", concurrency=64)
            .map(parse, lane="process")
            .flat_map(sentences)          # a function that yields several items
            .filter(interesting)
            .map(store, lane="thread", concurrency=4))
    for result in pipe.run(urls):         # or: async for result in pipe.run_async(urls)
        ...

Each stage calls its function on its lane (auto by default) with at most ``concurrency``
items at once. Items travel between stages in batches through queues of at most
``buffer`` batches, so a slow stage pushes back on the ones before it and memory stays
bounded whatever the source. Results come in source order (``ordered=True``) or as they
complete. ``errors="raise"`` ends the run at the first failed call (its error is raised
to the consumer, after the results before it in order) and cancels the rest;
``errors="collect"`` yields a ``Failed(item, error)`` in place of each failed item and
goes on (later stages pass it through). Closing the iterator mid-stream stops every
stage, cancels what has not started, and reads no more of the source. ``progress=True``
draws a bar of the results with each stage's throughput beside it (see ``_progress``).

How it runs: a thread reads the source into batches (one item while the first stage is
idle, up to MAX_BATCH while it is busy: no latency added to a slow source, no per-item
cost on a fast one). Per stage, a feeder thread takes batches and submits each as one
map to the stage's lane (``map_calls``: process chunks, auto's decisions), as far as
the stage's concurrency allows; an emitter thread takes the results in order (or as they
complete), fans out or filters them, and puts them on the next queue. No thread polls:
each waits on one queue, one condition or one future, and closing wakes them all.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent import futures as cf
from typing import Any, NamedTuple

from ._calls import is_coroutine_function
from ._progress import Bar, checked_progress, open_bar, total_of

__all__ = ["Failed", "Pipeline"]

MAX_BATCH = 256  # items a batch holds at most
BUFFER = 4  # batches a queue between two stages holds
CONCURRENCY = 64  # a stage's items at once, unless it says
SOURCE_JOIN_S = 1.0  # closing waits this long at most for a source blocked in its next item


class Failed(NamedTuple):
    """A result of a pipeline run with ``errors="collect"``: ``item`` failed with
    ``error`` at some stage (later stages pass it on untouched)."""

    item: Any
    error: BaseException


class _Dropped:
    """What a filter's call returns for an item it drops (pickled by reference)."""

    def __reduce__(self) -> str:
        return "DROPPED"


DROPPED = _Dropped()


def _kept(predicate: Callable[[Any], Any], item: Any) -> Any:
    return item if isinstance(item, Failed) or predicate(item) else DROPPED


def _listed(fn: Callable[[Any], Iterable[Any]], item: Any) -> Any:
    return [item] if isinstance(item, Failed) else list(fn(item))


def _caught(fn: Callable[[Any], Any], item: Any) -> Any:
    if isinstance(item, Failed):
        return item
    try:
        return fn(item)
    except Exception as exc:  # collected: the run goes on
        return Failed(item, exc)


async def _caught_async(fn: Callable[[Any], Any], item: Any) -> Any:
    if isinstance(item, Failed):
        return item
    try:
        return await fn(item)
    except Exception as exc:
        return Failed(item, exc)


class _Stage(NamedTuple):
    fn: Callable[[Any], Any]
    kind: str  # "map", "flat" or "filter"
    lane: str | None
    concurrency: int


class Pipeline:
    """A chain of stages; see the module's text. Each method returns a new pipeline, so
    one can be built once and run many times."""

    def __init__(self, executor: Any = None, *, ordered: bool = True, errors: str = "raise",
                 buffer: int = BUFFER, progress: bool | str = False,
                 stages: tuple[_Stage, ...] = ()) -> None:
        checked_progress(progress)
        if errors not in ("raise", "collect"):
            raise ValueError(f"errors must be 'raise' or 'collect', not {errors!r}")
        if not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"buffer must be an int of at least 1, not {buffer!r}")
        self._executor = executor
        self._ordered = ordered
        self._errors = errors
        self._buffer = buffer
        self._progress = progress
        self._stages = stages

    def _with(self, fn: Any, kind: str, lane: str | None, concurrency: int | None) -> Pipeline:
        if not callable(fn):
            raise TypeError(f"a stage needs a callable, not {fn!r}")
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise ValueError(f"concurrency must be an int of at least 1, not {concurrency!r}")
        stage = _Stage(fn, kind, lane, concurrency or CONCURRENCY)
        return Pipeline(self._executor, ordered=self._ordered, errors=self._errors,
                        buffer=self._buffer, progress=self._progress,
                        stages=(*self._stages, stage))

    def map(self, fn: Callable[[Any], Any], *, lane: str | None = None,
            concurrency: int | None = None) -> Pipeline:
        """A stage that calls ``fn(item)`` for each item (``lane``: None for the
        executor's default, auto unless it says)."""
        return self._with(fn, "map", lane, concurrency)

    def flat_map(self, fn: Callable[[Any], Iterable[Any]], *, lane: str | None = None,
                 concurrency: int | None = None) -> Pipeline:
        """A stage whose ``fn(item)`` returns or yields several items (none, one, many),
        each passed on."""
        if is_coroutine_function(fn):
            raise TypeError("flat_map takes a plain function (an iterable per item)")
        return self._with(fn, "flat", lane, concurrency)

    def filter(self, predicate: Callable[[Any], Any], *, lane: str | None = None,
               concurrency: int | None = None) -> Pipeline:
        """A stage that passes on the items for which ``predicate(item)`` is true."""
        if is_coroutine_function(predicate):
            raise TypeError("filter takes a plain function")
        return self._with(predicate, "filter", lane, concurrency)

    def run(self, source: Iterable[Any] | AsyncIterable[Any]) -> Iterator[Any]:
        """The results for ``source``'s items (an async iterable is read on a loop of the
        source's thread); closing the iterator stops the run."""
        run = self._run(source)
        return _results(run, self._bar(run, source))

    async def run_async(self, source: Iterable[Any] | AsyncIterable[Any],
                        ) -> AsyncIterator[Any]:
        """``run`` as an async iterator: ``async for result in pipe.run_async(items)``
        (an async iterable source is read on the running loop)."""
        loop = asyncio.get_running_loop()
        run = self._run(source, loop)
        bar = self._bar(run, source)
        try:
            while True:
                batch = _batch(await loop.run_in_executor(None, run.results.get), bar)
                if batch is None:
                    return
                for value in batch:
                    yield value
        finally:
            run.close()
            if bar is not None:
                bar.close()

    def _bar(self, run: _Run, source: Any) -> Bar | None:
        """The run's progress bar, if asked for: results, and each stage's throughput."""
        names = [getattr(stage.fn, "__name__", "stage") for stage in self._stages]
        total = None if isinstance(source, AsyncIterable) else total_of((source,))
        return open_bar(self._progress, total if not self._stages or all(
            stage.kind == "map" for stage in self._stages) else None, "pipeline",
            functools.partial(run.throughput, names))

    def _run(self, source: Any, loop: asyncio.AbstractEventLoop | None = None) -> _Run:
        from ._task import default_executor

        return _Run(self._executor or default_executor(), self._stages, self._ordered,
                    self._errors, self._buffer, source, loop)

    def __repr__(self) -> str:
        shown = " | ".join(f"{s.kind} {getattr(s.fn, '__name__', s.fn)!s}"
                           f"[{s.lane or 'default'}, {s.concurrency}]" for s in self._stages)
        return f"<multilane.Pipeline {shown or '(no stage)'}>"


class _End:
    """The end of a stream."""


_END = _End()


class _StopMessage:
    """Wakes a thread waiting on a queue: the run is closed."""


_STOP = _StopMessage()


class _Error(NamedTuple):
    error: BaseException


class _Stopped(Exception):
    """The run was closed: a thread of it stops."""


class _Credits:
    """Items a stage may have at once: taken before a batch is submitted, given back once
    its results are passed on."""

    def __init__(self, total: int, run: _Run) -> None:
        self._free = total
        self._run = run
        self._changed = threading.Condition()

    def take(self, n: int) -> None:
        with self._changed:
            while self._free < n and not self._run.stopped:
                self._changed.wait()
            if self._run.stopped:
                raise _Stopped
            self._free -= n

    def give(self, n: int) -> None:
        with self._changed:
            self._free += n
            self._changed.notify_all()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()


class _Run:
    """One run of a pipeline: its queues and threads (see the module's text)."""

    def __init__(self, executor: Any, stages: tuple[_Stage, ...], ordered: bool, errors: str,
                 buffer: int, source: Any, loop: asyncio.AbstractEventLoop | None = None,
                 ) -> None:
        self.ordered = ordered
        self.stopped = False
        self.stop: cf.Future = cf.Future()  # done once closed: wakes threads waiting on calls
        self._lock = threading.Lock()
        self._queues: list[queue.Queue] = [queue.Queue(buffer)
                                           for _ in range(len(stages) + 1)]
        self.results = self._queues[-1]
        self._credits = [_Credits(stage.concurrency, self) for stage in stages]
        self._pending: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in stages]
        self._outstanding = [0] * len(stages)  # unordered: futures not yet passed on
        self._passed = [0] * len(stages)  # items each stage has passed on (progress)
        self._started = time.monotonic()
        self._futures: set[cf.Future] = set()
        self._threads: list[threading.Thread] = []
        self._source_thread: threading.Thread | None = None
        self._pump: cf.Future | None = None  # an async source read on the caller's loop
        collect = errors == "collect"
        for i, stage in enumerate(stages):
            self._start(self._feed, i, stage.concurrency, _submitter(executor, stage, collect))
            self._start(self._emit, i, stage.kind)
        if loop is not None and isinstance(source, AsyncIterable):
            self._pump = asyncio.run_coroutine_threadsafe(self._read_async(source), loop)
            self._pump.add_done_callback(self._pumped)
        else:
            self._source_thread = self._start(self._read, source)

    def _start(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=self._guarded, args=(target, *args), daemon=True,
                                  name=f"multilane-pipeline{target.__name__}")
        self._threads.append(thread)
        thread.start()
        return thread

    def _guarded(self, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer
            self.close(exc)

    # ------------------------------------------------------------------ the source

    def _read(self, source: Any) -> None:
        """Reads the source into the first queue: one item at a time while the first
        stage waits for work, up to MAX_BATCH while it is busy."""
        if isinstance(source, AsyncIterable):
            asyncio.run(self._read_async(source))
            return
        first = self._queues[0]
        batch: list = []
        end: Any = _END
        try:
            for item in source:
                if self.stopped:
                    raise _Stopped
                batch.append(item)
                if len(batch) >= MAX_BATCH or first.empty():
                    self._put(first, batch)
                    batch = []
        except _Stopped:
            raise
        except Exception as exc:  # the source failed: after the items before it
            end = _Error(exc)
        if batch:
            self._put(first, batch)
        self._put(first, end)

    async def _read_async(self, source: AsyncIterable[Any]) -> None:
        loop = asyncio.get_running_loop()
        first = self._queues[0]
        batch: list = []

        async def put(message: Any) -> None:
            try:
                first.put_nowait(message)
            except queue.Full:  # the first stage is busy: wait for room off the loop
                await loop.run_in_executor(None, self._put, first, message)
            if self.stopped:
                raise _Stopped

        end: Any = _END
        try:
            async for item in source:
                if self.stopped:
                    raise _Stopped
                batch.append(item)
                if len(batch) >= MAX_BATCH or first.empty():
                    await put(batch)
                    batch = []
        except _Stopped:
            raise
        except Exception as exc:  # the source failed: after the items before it
            end = _Error(exc)
        if batch:
            await put(batch)
        await put(end)

    def _pumped(self, pump: cf.Future) -> None:
        error = None if pump.cancelled() else pump.exception()
        if error is not None and not isinstance(error, (_Stopped, asyncio.CancelledError)):
            self.close(error)

    # ------------------------------------------------------------------ the stages

    def _feed(self, i: int, concurrency: int, submit: Callable[[list], Any]) -> None:
        """Takes batches for stage ``i`` and submits them, within its concurrency; each
        future goes to the emitter in order, or once done if the run is unordered."""
        inbound, credits, pending = self._queues[i], self._credits[i], self._pending[i]
        while not isinstance(message := self._get(inbound), (_End, _Error)):
            for start in range(0, len(message), concurrency):
                part = message[start:start + concurrency]
                credits.take(len(part))
                futures, chunked = submit(part)
                with self._lock:
                    self._futures.update(futures)
                    self._outstanding[i] += len(futures)
                for future in futures:
                    if self.ordered:
                        pending.put((future, chunked))
                    else:
                        future.add_done_callback(
                            functools.partial(_on_done, pending.put, chunked))
        pending.put(message)  # the end, or an error upstream: after what came before

    def _emit(self, i: int, kind: str) -> None:
        """Passes stage ``i``'s results on (fanned out or filtered), in order or as they
        complete, a batch of whatever is done at once, and gives their credits back."""
        pending, credits, outbound = self._pending[i], self._credits[i], self._queues[i + 1]
        end: Any = None  # the end, or an error, once it came
        entry: Any = None  # taken from pending, not yet passed on
        while True:
            with self._lock:
                if end is not None and not self._outstanding[i]:
                    break
            entry = entry if entry is not None else self._get(pending)
            if isinstance(entry, (_End, _Error)):
                end, entry = entry, None
                continue
            values: list = []
            carry = None  # taken to look at, not passed on with these
            try:
                while True:  # this entry, and the next ones if done already
                    future, chunked = entry
                    self._wait(future)
                    value = future.result()
                    values.extend(value if chunked else (value,))
                    with self._lock:
                        self._futures.discard(future)
                        self._outstanding[i] -= 1
                    try:
                        entry = pending.get_nowait()
                    except queue.Empty:
                        break
                    if entry is _STOP:
                        raise _Stopped
                    if isinstance(entry, (_End, _Error)) or not entry[0].done():
                        carry = entry
                        break
            except Exception as exc:  # errors="raise": after the results before it
                if values := _passed_on(kind, values):
                    self._put(outbound, values)
                self._put(outbound, _Error(exc))
                return
            taken = len(values)
            if values := _passed_on(kind, values):
                self._put(outbound, values)
            credits.give(taken)
            self._passed[i] += taken  # (this thread's alone: read without the lock)
            entry = carry
        self._put(outbound, end)

    def throughput(self, names: list[str]) -> str:
        """Each stage's items per second so far, for the progress bar."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return ", ".join(f"{name} {passed / elapsed:,.0f}/s"
                         for name, passed in zip(names, self._passed, strict=True))

    # ------------------------------------------------------------------ waiting, closing

    def _wait(self, future: cf.Future) -> None:
        if not future.done():
            cf.wait((future, self.stop), return_when=cf.FIRST_COMPLETED)
        if self.stopped:
            raise _Stopped

    def _get(self, q: Any) -> Any:
        message = q.get()
        if message is _STOP or self.stopped:
            raise _Stopped
        return message

    def _put(self, q: queue.Queue, message: Any) -> None:
        q.put(message)  # blocks while the next stage is behind: the push back
        if self.stopped:
            raise _Stopped

    def close(self, error: BaseException | None = None) -> None:
        """Stops every thread of the run and cancels what has not started; with
        ``error``, the consumer's next message is that error. The source's thread is
        waited for SOURCE_JOIN_S at most: it may be blocked in the source itself (a
        socket, a queue), and then ends at its next item."""
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
            futures = list(self._futures)
        self.stop.set_result(None)
        if self._pump is not None:
            self._pump.cancel()
        for future in futures:
            future.cancel()
        for credits in self._credits:
            credits.wake()
        for q in self._queues[:-1]:
            _wake(q)
        for pending in self._pending:
            pending.put(_STOP)
        _empty(self.results)  # a thread blocked putting there goes on, and stops
        self.results.put_nowait(_Error(error) if error is not None else _STOP)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(SOURCE_JOIN_S if thread is self._source_thread else None)


def _empty(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _wake(q: queue.Queue) -> None:
    """Empties ``q`` (a thread blocked putting goes on) and leaves _STOP in it (a thread
    blocked getting wakes)."""
    while True:
        _empty(q)
        try:
            q.put_nowait(_STOP)
            return
        except queue.Full:  # a blocked putter filled it meanwhile
            continue


def _passed_on(kind: str, values: list) -> list:
    """A stage's results as the next stage takes them: fanned out, filtered, or as
    they are (a Failed stands for itself: no list to fan out)."""
    if kind == "flat":
        return [item for items in values
                for item in ((items,) if isinstance(items, Failed) else items)]
    if kind == "filter":
        return [item for item in values if item is not DROPPED]
    return values


def _on_done(put: Callable[[Any], Any], chunked: bool, future: cf.Future) -> None:
    put((future, chunked))


def _submitter(executor: Any, stage: _Stage, collect: bool) -> Callable[[list], Any]:
    """Submits a batch of items to the stage's lane as one map: (futures, chunked)."""
    fn: Any = stage.fn
    coroutine = is_coroutine_function(fn)
    if stage.kind == "filter":
        fn = functools.partial(_kept, fn)
    elif stage.kind == "flat":
        fn = functools.partial(_listed, fn)
    if collect:  # a failed call becomes a Failed result, which later stages pass on
        fn = functools.partial(_caught_async if coroutine else _caught, fn)
    view = executor.options(lane=stage.lane) if stage.lane is not None else executor.options()
    return functools.partial(view._map_batch, fn)  # noqa: SLF001 -- the package's own


def _results(run: _Run, bar: Bar | None) -> Iterator[Any]:
    try:
        while (batch := _batch(run.results.get(), bar)) is not None:
            yield from batch
    finally:
        run.close()
        if bar is not None:
            bar.close()


def _batch(message: Any, bar: Bar | None) -> list[Any] | None:
    """The results a message from the run's last stage carries, counted on the bar; None
    at the end of the run; raises the error that failed it."""
    if message is _END or message is _STOP:
        return None
    if isinstance(message, _Error):
        raise message.error
    if bar is not None:
        bar.add(len(message))
    return message
