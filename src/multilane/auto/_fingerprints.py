"""Fingerprints: of this machine (what makes a cost measured here comparable with one
measured later) and of a function (its name and code: a change to its code is a new
key). The profile store keys what it keeps by both."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import sys
import types
from typing import Any

from .._cores import usable_cores

__all__ = ["SCHEMA", "function_fingerprint", "machine_fingerprint"]

SCHEMA = 1  # of the profile store's table and of the keys


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@functools.cache
def machine_fingerprint() -> str:
    """A digest of what makes costs measured here comparable with costs measured later:
    the CPU, the cores this process may use, the memory, the interpreter and its GIL, and
    multilane's version. Computed once per process."""
    import multilane

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            model = next((line.partition(":")[2].strip() for line in f
                          if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (AttributeError, ValueError, OSError):
        memory = 0
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return _digest(repr((platform.machine(), model, usable_cores(), memory,
                         sys.implementation.name, sys.version_info[:2], gil,
                         getattr(multilane, "__version__", SCHEMA))))


def _constant(value: Any) -> str:
    kind = type(value)
    if kind is tuple or kind is frozenset:
        items = [_constant(v) for v in value]  # a frozenset's order changes between runs
        return repr((kind.__name__, sorted(items) if kind is frozenset else items))
    if kind in (int, float, complex, str, bytes, bool, type(None), type(Ellipsis)):
        return repr((kind.__name__, value))
    return kind.__name__  # its repr may hold an address


@functools.lru_cache(maxsize=1024)
def _code_digest(code: types.CodeType) -> str:
    consts = tuple(_code_digest(c) if isinstance(c, types.CodeType) else _constant(c)
                   for c in code.co_consts)
    return _digest(repr((code.co_code, consts, code.co_names, code.co_varnames,
                         code.co_freevars, code.co_argcount, code.co_posonlyargcount,
                         code.co_kwonlyargcount, code.co_flags)))


def function_fingerprint(fn: Any) -> str | None:
    """A digest of a function's module, qualified name and code: a change to its code is a
    new key. A partial or a bound method stands for its function; a decorator's code
    (``functools.wraps``) is hashed with the code it wraps; a function of ``__main__``
    names its script too (every script is a ``__main__``). A builtin: its name with the
    interpreter's version and its package's. Anything else (a callable object, a class):
    None, nothing stored. The closures of one code share a digest.

    >>> function_fingerprint(len) == function_fingerprint(len)
    True
    """
    try:
        for _ in range(16):
            if isinstance(fn, functools.partial):
                fn = fn.func
            elif (func := getattr(fn, "__func__", None)) is not None:
                fn = func
            else:
                break
        module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
        codes: list[str] = []
        layer = fn
        while layer is not None and len(codes) < 16:
            if isinstance(code := getattr(layer, "__code__", None), types.CodeType):
                codes.append(_code_digest(code))
            layer = getattr(layer, "__wrapped__", None)
        if codes:
            script = module == "__main__" and getattr(fn, "__globals__", {}).get("__file__")
            return _digest(repr((module, name, script, codes)))
        if isinstance(fn, types.BuiltinFunctionType) and isinstance(name, str):
            package = sys.modules.get((module or "builtins").partition(".")[0])
            return _digest(repr((module, name, sys.version, getattr(package, "__version__", 0))))
    except Exception:  # an object whose __getattr__ or __eq__ raises: not stored
        pass
    return None
