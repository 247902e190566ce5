"""Waits that a Ctrl-C always ends.

CPython runs a signal's Python handler in the main thread, between bytecodes. A blocking
wait (``Thread.join``, ``Condition.wait``) lets go of the GIL and sleeps in the kernel: a
signal that arrives during that sleep interrupts it and is handled at once, but one that
arrives in the few instructions between the interpreter's last look at its pending signals
and the sleep is only flagged, and the thread sleeps on until something else wakes it. For
``shutdown(wait=True)`` that is when the work is done, so a Ctrl-C would be lost. A thread
preempted in that window (on a loaded machine, about one Ctrl-C in a hundred right after
a ``shutdown`` began) misses it; waiting in slices bounds the delay to one slice.
"""

from __future__ import annotations

import threading

__all__ = ["SLICE_S", "join"]

SLICE_S = 0.1  # the longest a Ctrl-C waits for the waiting thread to notice it


def join(thread: threading.Thread) -> None:
    """``thread.join()``, in slices a Ctrl-C cannot fall between."""
    while thread.is_alive():
        thread.join(SLICE_S)
