"""Pieces of a map: a segment (many calls, one future for their results), the settling of
chunks run in a worker (``_remote``), and the small index helpers a map's calls are cut
with."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._calls import calls_of, run_items
from .._future import (
    LaneFuture,
    gather,
    settle_quietly,
)

__all__ = [
    "Segment", "bounds", "copy_outcome", "failed",
    "settle_chunk",
]


@dataclass(slots=True)
class Segment:
    """Calls ``items[start:stop]`` of one map, with one future for their results (a list):
    a map of many calls costs a future per segment, not per call."""

    piece: LaneFuture
    fn: Any
    items: Sequence[Any]
    start: int
    stop: int
    single: bool  # items are single arguments, not argument tuples
    chunksize: int | None = None  # the caller's: the size of its chunks if sent to processes
    done: list = field(default_factory=list)  # pieces of calls cut from its front (``cut``)

    def __len__(self) -> int:
        return self.stop - self.start

    def cut(self, size: int) -> Segment:
        """Its first ``size`` calls as a segment of their own, to run now; this one keeps
        the rest, and gathers both into its piece once ``seal``-ed."""
        head = Segment(LaneFuture(), self.fn, self.items, self.start, self.start + size,
                       self.single)
        self.start += size
        self.done.append(head.piece)
        return head

    def seal(self) -> Segment:
        """Ready to leave the line of waiting segments: if calls were cut from it, its
        piece becomes the gathering of theirs and its own. One level however many cuts
        (a gathering per cut nests a callback per cut: a long drain overflowed the stack)."""
        if self.done:
            own = LaneFuture()
            gather([*self.done, own], self.piece, concatenate=True)
            self.piece, self.done = own, []
        return self

    def calls(self) -> Any:
        return calls_of(self.items, self.start, self.stop, self.single)

    def run(self) -> tuple[list, float, float]:
        """Runs here, one call after another: (results, wall, CPU seconds)."""
        start, cpu = time.monotonic(), time.thread_time()
        results = run_items(self.fn, self.items[self.start:self.stop], self.single)
        return results, time.monotonic() - start, time.thread_time() - cpu




def settle_chunk(futures: list, inner: Any) -> None:
    error = inner.exception()
    if error is not None:
        for future in futures:
            settle_quietly(future, error=error)
        return
    for future, (ok, value) in zip(futures, inner.result(), strict=True):
        if ok:
            settle_quietly(future, value)
        else:
            settle_quietly(future, error=value)


def bounds(start: int, stop: int, count: int) -> list[tuple[int, int]]:
    """[start, stop) cut into at most ``count`` ranges of nearly equal length."""
    size = max(1, -(-(stop - start) // count))
    return [(a, min(a + size, stop)) for a in range(start, stop, size)]


def failed(exc: BaseException) -> LaneFuture:
    future = LaneFuture()
    future.set_exception(exc)
    return future


def copy_outcome(piece: LaneFuture, inner: Any) -> None:
    error = inner.exception()
    settle_quietly(piece, *((None, error) if error is not None else (inner.result(), None)))
