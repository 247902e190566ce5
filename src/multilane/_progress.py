"""Progress bars for maps: ``map(fn, items, progress=True)``.

Off by default. ``progress=True`` draws a bar on stderr when stderr is a terminal (a log
file or a pipe gets nothing); ``progress="always"`` draws it anyway. The bar is tqdm's when
tqdm is installed, else rich's, else a plain line redrawn at most ten times a second.

It counts items as their calls complete, not as the consumer takes them, and counts a
chunk's items, not the chunk: a process chunk of 500 items moves the bar by 500 (tqdm's
own ``process_map`` counted chunks, tqdm#1791). Callbacks come from the lanes' threads;
every backend is updated under one lock.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol

__all__ = ["Bar", "checked_progress", "closing", "closing_pieces", "open_bar", "total_of"]

REDRAW_S = 0.1  # the plain bar redraws at most this often
# A bar appears at the first count once its map has run this long (tqdm's ``delay``): a
# shorter map draws nothing, and costs no bar. Drawing one at once cost a 10^5-item map
# of tiny calls (10 ms on the process lane) 9-20% of its time: tqdm's set-up and first
# frame.
DELAY_S = 0.2


class _Backend(Protocol):
    def advance(self, n: int, detail: str | None) -> None: ...

    def close(self) -> None: ...


def checked_progress(progress: Any) -> bool | str:
    """``progress`` as ``map`` takes it: False, True or "always"."""
    if progress is False or progress is True or progress == "always":
        return progress
    raise ValueError(f"progress must be False, True or 'always', not {progress!r}")


def total_of(iterables: tuple[Iterable[Any], ...]) -> int | None:
    """How many items a map of ``iterables`` has, if they say (the shortest one's)."""
    try:
        return min((len(iterable) for iterable in iterables), default=0)  # type: ignore[arg-type]
    except TypeError:  # a generator, say: not known
        return None


class Bar:
    """A map's progress: ``watch`` counts a future's items once it is done; ``add``
    counts items directly. ``detail``, if given, says more beside the count (a
    pipeline's throughput per stage), read when the bar is redrawn.

    The backend is made (``make()``) at the first count ``delay`` seconds or more after
    the bar opened, with the count so far, or at the close of a map that ran that long:
    a shorter map draws nothing, and a longer one shows no empty bar first (as tqdm's own
    ``delay``). No timer: a thread per bar cost ~0.2 ms, 2% of a 10^5-item map."""

    def __init__(self, make: Callable[[], _Backend], detail: Callable[[], str] | None = None,
                 delay: float = 0.0) -> None:
        self._make = make
        self._backend: _Backend | None = None
        self._due = time.monotonic() + delay
        self._detail = detail
        self._lock = threading.Lock()
        self._closed = False
        self._counted = 0
        self._told = 0.0  # when ``detail`` was last read
        if delay <= 0:
            self._show()

    def _show(self) -> bool:
        """Makes the backend if it is due (holding the lock); whether there is one."""
        if self._backend is None:
            if time.monotonic() < self._due:
                return False
            self._backend = self._make()
            self._advance(self._counted)
        return True

    def watch(self, future: Future, chunked: bool) -> None:
        future.add_done_callback(functools.partial(self._count, chunked))

    def _count(self, chunked: bool, future: Future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        self.add(len(future.result()) if chunked else 1)

    def add(self, n: int) -> None:
        with self._lock:
            if self._closed:
                return
            self._counted += n
            if self._backend is not None:
                self._advance(n)
            else:
                self._show()  # with the count so far, n included

    def _advance(self, n: int) -> None:
        assert self._backend is not None
        detail = None
        now = time.monotonic()
        if self._detail is not None and now - self._told >= REDRAW_S:
            self._told, detail = now, self._detail()
        self._backend.advance(n, detail)

    def close(self, done: int = 0) -> None:
        """Ends the bar; ``done``: the items the consumer took, which the bar counts if
        it has not yet (a future wakes its waiter before it runs its done-callbacks, so
        the consumer can finish before the last count arrives)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._show():
                return  # ended before it was due: nothing drawn
            assert self._backend is not None
            missing = max(0, done - self._counted)
            if missing or self._detail is not None:
                self._backend.advance(missing, self._detail() if self._detail else None)
            self._backend.close()


def open_bar(progress: bool | str, total: int | None, label: str,
             detail: Callable[[], str] | None = None) -> Bar | None:
    """A bar for a map of ``total`` items (None: not known), or None if there is none to
    draw (``progress`` False, or True while stderr is not a terminal)."""
    if not progress:
        return None
    stream = sys.stderr
    if progress is True and not (hasattr(stream, "isatty") and stream.isatty()):
        return None
    return Bar(functools.partial(_backend, total, label, stream, time.monotonic()), detail,
               DELAY_S)


def _backend(total: int | None, label: str, stream: Any, started: float) -> _Backend:
    """tqdm's bar, else rich's, else the plain line; its rate counted from ``started``
    (on the monotonic clock), when the map began, not when the bar appeared."""
    for backend in (_tqdm, _rich):
        found = backend(total, label, stream, started)
        if found is not None:
            return found
    return _Plain(total, label, stream, started)


def _tqdm(total: int | None, label: str, stream: Any, started: float) -> _Backend | None:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar = tqdm(total=total, desc=label, unit="item", file=stream, disable=False,
               dynamic_ncols=True)
    # tqdm times with time.time: its clock moved back by the time the map ran unseen.
    bar.start_t = bar.last_print_t = bar.start_t - (time.monotonic() - started)

    class Tqdm:
        def advance(self, n: int, detail: str | None) -> None:
            if detail is not None:
                bar.set_postfix_str(detail, refresh=False)
            bar.update(n)

        def close(self) -> None:
            bar.close()

    return Tqdm()


def _rich(total: int | None, label: str, stream: Any, started: float) -> _Backend | None:
    try:
        from rich.console import Console
        from rich.progress import Progress
    except ImportError:
        return None
    bar = Progress(console=Console(file=stream, force_terminal=True))
    task = bar.add_task(label, total=total)
    bar.start()

    class Rich:
        def advance(self, n: int, detail: str | None) -> None:
            if detail is None:
                bar.update(task, advance=n)
            else:
                bar.update(task, advance=n, description=f"{label} ({detail})")

        def close(self) -> None:
            bar.stop()

    return Rich()


class _Plain:
    """One line, redrawn in place: ``label: 1234/5000 items, 850 items/s``."""

    def __init__(self, total: int | None, label: str, stream: Any, started: float) -> None:
        self._total, self._label, self._stream = total, label, stream
        self._n = 0
        self._detail = ""
        self._start, self._drawn = started, time.monotonic()
        self._draw()

    def advance(self, n: int, detail: str | None) -> None:
        self._n += n
        if detail is not None:
            self._detail = f" ({detail})"
        now = time.monotonic()
        if now - self._drawn >= REDRAW_S:
            self._drawn = now
            self._draw()

    def close(self) -> None:
        self._draw()
        self._stream.write("\n")
        self._stream.flush()

    def _draw(self) -> None:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        of = f"/{self._total}" if self._total is not None else ""
        self._stream.write(f"\r{self._label}: {self._n}{of} items, "
                           f"{self._n / elapsed:,.0f} items/s{self._detail}")
        self._stream.flush()


def closing_pieces(pieces: Iterator[list], bar: Bar) -> Generator[list, None, None]:
    """A map's result lists, then the bar closed (also if the consumer stops early).
    Counted a list at a time, so that the items can be chained at C speed: a generator
    frame per item (``closing``) added half the time of a map of 10^5 tiny calls."""
    taken = 0
    try:
        for piece in pieces:
            yield piece
            taken += len(piece)  # the consumer has taken them all: it asks for the next
    finally:
        bar.close(taken)


def closing(results: Iterator[Any], bar: Bar) -> Iterator[Any]:
    """``results``, then the bar closed (also if the consumer stops early)."""
    taken = 0
    try:
        for taken, value in enumerate(results, 1):  # noqa: B007 -- counted for the bar
            yield value
    finally:
        bar.close(taken)
