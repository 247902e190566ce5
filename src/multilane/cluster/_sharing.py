"""``multilane.shared(obj)`` on a cluster: each block of shared buffers is placed on every
worker once (Dask's ``scatter(broadcast=True)``, Ray's ``put``), and an argument that is
an array lying in such a block (the object itself or any slice of it) travels as a few
numbers naming its place in the block, not as its bytes.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from ..buffers import _regions
from ._backend import Cluster
from ._remote import SharedPart

__all__ = ["Sharing"]


class Sharing:
    """The blocks placed on one cluster so far, released when ``multilane.shared``'s
    object (and every array made from it) is gone."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._placed: dict[tuple[int, int], Any] = {}  # (region id, buffer) -> handle
        self._lock = threading.Lock()
        _regions.on_forget(self)

    def lift(self, values: tuple, bases: list) -> tuple:
        """``values`` with each array lying in a shared block replaced by a SharedPart
        naming ``bases[i]``, whose handle it appends to ``bases`` if not there yet."""
        if not _regions.has_regions():
            return values
        numpy = sys.modules.get("numpy")
        if numpy is None:
            return values
        lifted = None
        for i, value in enumerate(values):
            if type(value) is numpy.ndarray and value.size:
                part = self._part(value, bases)
                if part is not None:
                    lifted = lifted or list(values)
                    lifted[i] = part
        return values if lifted is None else tuple(lifted)

    def _part(self, array: Any, bases: list) -> SharedPart | None:
        address = array.__array_interface__["data"][0]
        low = address + sum(min(0, (n - 1) * s) for n, s in zip(array.shape, array.strides,
                                                                   strict=True))
        high = address + array.itemsize + sum(max(0, (n - 1) * s) for n, s in zip(
            array.shape, array.strides, strict=True))
        found = _regions.find(low, high - low)
        if found is None:
            return None
        region, index, offset = found
        handle = self._handle(region, index)
        try:
            base = next(i for i, b in enumerate(bases) if b is handle)
        except StopIteration:
            base = len(bases)
            bases.append(handle)
        return SharedPart(base, offset + (address - low), array.shape, array.strides,
                          array.dtype.str)

    def _handle(self, region: Any, index: int) -> Any:
        key = (region.id, index)
        with self._lock:
            handle = self._placed.get(key)
        if handle is not None:
            return handle
        import numpy

        block = numpy.frombuffer(region.attachment.map(readonly=True)[index], numpy.uint8)
        handle = self._cluster.share(block)  # outside the lock: it may take a while
        with self._lock:
            placed = self._placed.setdefault(key, handle)
        if placed is not handle:
            self._cluster.release(handle)  # another thread placed it first
        return placed

    def forget_region(self, region_id: int) -> None:
        with self._lock:
            gone = [key for key in self._placed if key[0] == region_id]
            handles = [self._placed.pop(key) for key in gone]
        for handle in handles:
            self._cluster.release(handle)

    def clear(self) -> None:
        with self._lock:
            self._placed.clear()
