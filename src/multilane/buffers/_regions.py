"""The table of shared regions: which memory of this process belongs to a region that the
workers can map, so that a buffer lying in one is sent as (region, offset), not copied.

``multilane.shared(obj)`` (``_shared.py``) pickles ``obj`` with its large buffers out of
band into one arena block and returns an equal object whose arrays are read-only views of
that block. When such an array (or a contiguous slice of one) is passed to a process task,
its bytes are not sent again: the call names the region and an offset instead, each
worker maps the region the first time a task needs it and keeps it mapped, and the task's
arrays are views of that mapping. The region is forgotten (parent and workers) once no
object made from it and no task that names it is left.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import weakref
from collections import deque
from typing import Any

__all__ = ["Region", "add", "find", "has_regions", "on_forget"]

_ids = itertools.count(1)
_lock = threading.Lock()
# Sorted by start address: (start, end, region, buffer index) for every region buffer
# mapped in this process.
_starts: list[int] = []
_spans: list[tuple[int, int, Region, int]] = []
_forget_listeners: weakref.WeakSet[Any] = weakref.WeakSet()
# Buffers gone, (region, start), not yet taken out of the spans. A finalizer runs whenever
# the garbage collector does, which can be inside a ``with _lock`` of this very thread:
# it never waits for the lock, it leaves the work here for whoever holds it.
_gone: deque[tuple[Region, int]] = deque()


class Region:
    """The block holding one shared object's buffers, and its id for the workers."""

    __slots__ = ("id", "attachment", "alive", "__weakref__")

    def __init__(self, attachment: Any) -> None:
        self.id = next(_ids)
        self.attachment = attachment  # kept: the block is never reused while we exist
        self.alive = 0  # this process's buffers of the region still referenced

    def __repr__(self) -> str:
        return f"<multilane shared region {self.id}: {self.attachment.payload_bytes} bytes>"


def add(attachment: Any) -> tuple[Region, list]:
    """Makes ``attachment`` (a block of buffers) a region: maps its buffers read-only,
    enters them in the table, and has each one's death counted. (region, buffers)."""
    from .._core import buffer_address

    region = Region(attachment)
    buffers = attachment.map(readonly=True)
    spans = [(buffer_address(buffer), len(buffer), index) for index, buffer in enumerate(buffers)]
    with _lock:
        forgotten = _drop_gone_locked()
        for start, size, index in spans:
            where = bisect.bisect(_starts, start)
            _starts.insert(where, start)
            _spans.insert(where, (start, start + size, region, index))
        region.alive += len(spans)
    _tell_forgotten(forgotten)
    for buffer, (start, _, _) in zip(buffers, spans, strict=True):
        weakref.finalize(buffer, _buffer_gone, region, start)
    return region, buffers


def has_regions() -> bool:
    return bool(_starts)


def find(address: int, nbytes: int) -> tuple[Region, int, int] | None:
    """(region, buffer index, offset) if ``nbytes`` at ``address`` lie in a shared buffer."""
    with _lock:
        forgotten = _drop_gone_locked()  # first: a stale span could name reused memory
        where = bisect.bisect(_starts, address) - 1
        span = _spans[where] if where >= 0 else None
    _tell_forgotten(forgotten)
    if span is not None and address + nbytes <= span[1]:
        start, _, region, index = span
        return region, index, address - start
    return None


def on_forget(listener: Any) -> None:
    """``listener.forget_region(region_id)`` is called when a region is forgotten."""
    _forget_listeners.add(listener)


def _buffer_gone(region: Region, start: int) -> None:
    _gone.append((region, start))
    _release_gone()


def _release_gone() -> None:
    """Takes the buffers gone out of the spans, unless another holder of the lock (or this
    thread, if a finalizer interrupted it) will: every ``with _lock`` drops them first or
    is followed by a call here."""
    if not _lock.acquire(blocking=False):
        return
    try:
        forgotten = _drop_gone_locked()
    finally:
        _lock.release()
    _tell_forgotten(forgotten)  # and again, for buffers gone meanwhile


def _drop_gone_locked() -> list[int]:
    """Takes the buffers gone out of the spans; returns the ids of regions left unused."""
    forgotten = []
    while _gone:
        region, start = _gone.popleft()
        where = bisect.bisect_left(_starts, start)
        while where < len(_starts) and _starts[where] == start:
            if _spans[where][2] is region:
                del _starts[where], _spans[where]
                break
            where += 1
        region.alive -= 1
        if region.alive == 0:
            forgotten.append(region.id)
    return forgotten


def _tell_forgotten(region_ids: list[int]) -> None:
    """Follows every ``with _lock``: tells the listeners about regions left unused, then
    handles the buffers that went while the lock was held."""
    # Tasks that name a region hold it (and its block); workers may drop it once they
    # have run them. Telling them now is safe: a task still queued holds the Region, and
    # sending it re-sends the region to a worker that dropped it.
    for region_id in region_ids:
        for listener in list(_forget_listeners):
            listener.forget_region(region_id)
    if _gone:
        _release_gone()
