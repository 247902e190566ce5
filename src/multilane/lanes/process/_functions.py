"""The pool's function cache: a plain function is pickled once, sent to each worker once,
and then named by a small id; a function that dies is forgotten by the workers too."""

from __future__ import annotations

import itertools
import types
import weakref
from typing import Any

from ...buffers._serialize import cacheable, dumps_function

__all__ = ["FunctionCache"]


class FunctionCache:
    """(id, pickled function) for the functions a pool sends once per worker."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        # id(fn) -> (weak reference to fn, (function id, pickled fn)). Keyed by id() rather
        # than a WeakKeyDictionary, whose get() builds a weakref on every submit; the entry
        # is dropped by a finalizer when fn dies, before its id can be reused.
        self._table: dict[int, tuple[Any, tuple[int, bytes]]] = {}
        # Builtins cannot be weakly referenced; they live as long as their module anyway.
        self._builtins: dict[Any, tuple[int, bytes]] = {}
        self.forgotten: list[int] = []  # ids of collected functions, to FORGET in workers

    def __len__(self) -> int:
        return len(self._table) + len(self._builtins)

    def entry(self, fn: Any) -> tuple[int, bytes] | None:
        """(id, pickled function), or None for a callable pickled with each call (a bound
        method, a partial, a callable object: their state may change between calls).
        Raises SerializationError if ``fn`` cannot be pickled."""
        if not cacheable(fn):
            return None
        if type(fn) is types.BuiltinFunctionType:
            entry = self._builtins.get(fn)
            if entry is None:
                entry = self._builtins[fn] = (next(self._ids), dumps_function(fn))
            return entry
        found = self._table.get(id(fn))
        if found is not None and found[0]() is fn:
            return found[1]
        entry = (next(self._ids), dumps_function(fn))
        self._table[id(fn)] = (weakref.ref(fn), entry)
        weakref.finalize(fn, _forget, self._table, self.forgotten, id(fn), entry[0])
        return entry


def _forget(table: dict, forgotten: list[int], key: int, fid: int) -> None:
    """Finalizer of a cached function: drop its entry; workers are told to FORGET it."""
    table.pop(key, None)
    forgotten.append(fid)
