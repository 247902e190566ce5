"""``multilane.zero_copy()``: large NumPy arrays made in shared memory, sent without a copy.

NumPy lets a program choose the allocator that makes its arrays' data, per thread (a
context variable: NEP 49). multilane's keeps arrays of 1 MiB or more in memfd blocks of
its arena (``SharedHeap`` in the C++ core) and leaves smaller ones to NumPy's own. When
such an array, or a contiguous slice of one, is the argument or the result of a process
task, its block goes to the other side as it is: nothing is copied, the receiver maps it.

The sender keeps an ordinary, writable array. The first send turns the sender's mapping
of it copy-on-write over the same pages (a remap, no copy), so the receiver sees the array
as it was when sent, whatever the sender writes afterwards; a page the sender writes after
a send is copied on that write, as after a fork. An array sent again unchanged goes again
without a copy; one written since is copied, like any other array.

It is off unless asked for, in the parent and in workers alike: a new block is faulted in
4 KiB page by page, where NumPy's own large arrays get transparent huge pages, so on some
machines making a large array this way costs more than copying it once. A worker's tasks
get it with ``initializer=multilane.zero_copy`` (or a call to it in your own
initializer): their results then come back uncopied. It applies to the thread that calls
it, so in a hybrid worker only to what its main thread makes, not its inner threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AllocatorStatistics", "zero_copy"]

_NEP49 = (1, 22)  # the first NumPy with per-thread data allocators


@dataclass(frozen=True)
class AllocatorStatistics:
    """A snapshot of multilane's NumPy allocator in this process (``zero_copy.statistics()``)."""

    live_arrays: int  # allocations alive now (one memfd block each)
    live_bytes: int
    allocations: int  # arrays made in shared memory, ever
    declined: int  # large arrays left to NumPy's allocator (too many blocks, no memfd)
    sent_without_copy: int  # buffers sent as their own block
    snapshots: int  # of them, first sends (the sender's mapping turned copy-on-write)
    copied_after_write: int  # sends that had to copy: the buffer was written since its last


class zero_copy:  # noqa: N801  (a function-like context manager, as torch.no_grad)
    """Large NumPy arrays made in this thread from now on live in shared memory, and go to
    process tasks (and come back from them) without a copy.

    It takes effect at once, in the calling thread and the asyncio tasks it starts (NumPy's
    allocator is a context variable); as a context manager, only for the block::

        with multilane.zero_copy():
            frame = np.random.rand(8192, 8192)      # 512 MB, made in shared memory
        total = ex.submit(np.sum, frame).result()   # sent without a copy

    Arrays of 1 MiB or more are made in shared memory; smaller ones stay with NumPy's
    allocator. ``zero_copy(False)`` goes back to NumPy's allocator if multilane's is on.
    Arrays already made keep their memory either way.

    The cost: a new shared-memory block is faulted in page by page (4 KiB pages: the
    kernel gives shared memory no transparent huge pages unless configured to), which is
    slower than for NumPy's own large arrays, while a block freed and reused (temporaries
    in a loop) costs no fault at all. See docs/architecture.md, "Large buffers".

    Raises ``ImportError`` if NumPy 1.22 or later is not installed.
    """

    def __init__(self, enabled: bool = True) -> None:
        from .._core import numpy_handler, numpy_set_handler

        self._api = _numpy_api()
        ours = numpy_handler(self._api)
        self._previous = numpy_set_handler(self._api, ours if enabled else None)
        if not enabled and self._previous is not ours:
            numpy_set_handler(self._api, self._previous)  # someone else's: left alone

    def __enter__(self) -> zero_copy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        from .._core import numpy_set_handler

        numpy_set_handler(self._api, self._previous)

    @staticmethod
    def statistics() -> AllocatorStatistics:
        """What the allocator holds and how its arrays were sent, in this process."""
        from .._core import heap_stats

        s = heap_stats()
        return AllocatorStatistics(
            live_arrays=s["live_blocks"], live_bytes=s["live_bytes"],
            allocations=s["allocations"], declined=s["declined"],
            sent_without_copy=s["shares"], snapshots=s["snapshots"],
            copied_after_write=s["refused"])


def _numpy_api() -> Any:
    """NumPy's C API table (the ``_ARRAY_API`` capsule), checked to have NEP 49."""
    import numpy

    version = tuple(int(part) for part in numpy.__version__.split(".")[:2])
    if version < _NEP49:
        raise ImportError(f"multilane.zero_copy needs NumPy {_NEP49[0]}.{_NEP49[1]} or later, "
                          f"not {numpy.__version__}")
    try:
        from numpy._core import _multiarray_umath as multiarray  # type: ignore[attr-defined]
    except ImportError:
        from numpy.core import _multiarray_umath as multiarray  # type: ignore[no-redef]
    return multiarray._ARRAY_API  # noqa: SLF001  # NumPy's C API capsule, as C extensions use
