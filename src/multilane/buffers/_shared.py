"""``multilane.shared(obj)``: a large read-only object placed in shared memory once."""

from __future__ import annotations

import pickle
from typing import Any

from . import _regions
from ._serialize import dumps_oob

__all__ = ["shared"]


def shared(obj: Any) -> Any:
    """An equal copy of ``obj`` whose large buffers live, read-only, in shared memory.

    Pass it (or parts of it: arrays, contiguous slices) to any number of process tasks:
    its buffers go to each worker once, instead of being copied with every call. Arrays
    in the returned object are read-only everywhere. An object without large buffers is
    returned as it is. Threads and inline calls simply use the object.

    Example::

        table = multilane.shared(np.arange(10**8))
        totals = list(ex.map(np.sum, [table[i:i + 10**6] for i in range(0, 10**8, 10**6)]))
    """
    data, attachments, regions = dumps_oob(obj, allocated=False)  # every buffer in one block
    if not attachments or regions:
        return obj  # nothing large to share, or made of shared parts already
    (attachment,) = attachments
    _, buffers = _regions.add(attachment)
    plan, data = pickle.loads(data)  # every step names one of the block's buffers, in order
    return pickle.loads(data, buffers=[buffers[step[2]] for step in plan])
