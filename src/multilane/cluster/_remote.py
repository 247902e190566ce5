"""What runs on a cluster's worker: one call, or a chunk of a map, with the arrays that
were shared rebuilt as views of the block each worker received once.

The lane never hands the user's keywords to the cluster's own ``submit`` (Dask's takes
``key``, ``retries``, ``pure`` and more for itself): a call travels as ``(fn, args,
kwargs)`` positional values, so every keyword reaches the function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .._calls import run_items, settle

__all__ = ["SharedPart", "call", "chunk", "each_value"]


class SharedPart(NamedTuple):
    """An argument that is an array lying in a block ``multilane.shared`` made: the block
    is the cluster's shared object number ``base``; the array is a view of it."""

    base: int
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str


def _view(part: SharedPart, bases: tuple) -> Any:
    import numpy as np

    array = np.ndarray(part.shape, np.dtype(part.dtype), buffer=bases[part.base],
                       offset=part.offset, strides=part.strides)
    array.flags.writeable = False  # as everywhere else a shared array is seen
    return array


def rebuild(values: tuple, bases: tuple) -> tuple:
    """``values`` with each SharedPart replaced by its array."""
    return tuple(_view(v, bases) if type(v) is SharedPart else v for v in values)


def each_value(swap: Callable[[tuple], tuple], args: tuple,
               kwargs: dict) -> tuple[tuple, dict]:
    """A call's arguments with ``swap`` applied to its positional values and to its
    keyword values: the lane lifts shared arrays out of both, a worker rebuilds them."""
    if kwargs:
        kwargs = dict(zip(kwargs, swap(tuple(kwargs.values())), strict=True))
    return swap(args), kwargs


def call(fn: Any, args: tuple, kwargs: dict, *bases: Any) -> Any:
    """``fn(*args, **kwargs)`` on a worker (a coroutine run to its end)."""
    if bases:
        args, kwargs = each_value(lambda values: rebuild(values, bases), args, kwargs)
    return settle(fn(*args, **kwargs))


def chunk(fn: Any, items: list, single: bool, *bases: Any) -> list:
    """``fn`` over a chunk of a map's items, in order (see ``run_items``)."""
    if bases:
        items = list(rebuild(tuple(items), bases) if single
                     else (rebuild(item, bases) for item in items))
    return run_items(fn, items, single, settle)
