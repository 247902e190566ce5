"""``multilane advise module:function [ARG ...]``: run a function briefly in every lane and
say which suits it, with the auto lane's own verdict and evidence.

``ARG`` values are Python literals (``100000``, ``"text"``, ``[1, 2]``); anything else is
passed as a string. The function is found by module path (``package.module:function``)
or by file (``path/to/file.py:function``); either way worker processes import it by
module name, so its module must import cleanly.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import time
from typing import Any

import multilane

from .._calls import is_coroutine_function

__all__ = ["load", "parse_args", "run"]


class AdviseError(Exception):
    """A target or argument that cannot be used; the message says why."""


def load(target: str) -> Any:
    """The callable named by ``module:function`` or ``file.py:function``."""
    module_name, sep, qualname = target.rpartition(":")
    if not sep or not module_name or not qualname:
        raise AdviseError(f"expected module:function or file.py:function, got {target!r}")
    if module_name.endswith(".py"):
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise AdviseError(f"no such file: {module_name}")
        directory, filename = os.path.split(path)
        sys.path.insert(0, directory)  # workers inherit sys.path, so they find it too
        module_name = filename[:-3]
    elif "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: modules here are found
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdviseError(f"cannot import {module_name}: {exc}") from exc
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise AdviseError(f"{module_name} has no {qualname}") from None
    if not callable(found):
        raise AdviseError(f"{target} is not callable")
    return found


def parse_args(texts: list[str]) -> tuple:
    values = []
    for text in texts:
        try:
            values.append(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            values.append(text)
    return tuple(values)


def _time_lane(ex: multilane.Executor, fn: Any, args: tuple, lane: str, calls: int) -> float:
    """Seconds per call over ``calls`` calls made at once, after one such round to warm up
    (a new process pool runs slower for its first second)."""
    def one_round() -> float:
        start = time.perf_counter()
        list(ex.options(lane=lane).map(fn, *[[a] * calls for a in args]) if args else
             (f.result() for f in [ex.options(lane=lane).submit(fn) for _ in range(calls)]))
        return (time.perf_counter() - start) / calls

    one_round()
    return one_round()


def measure(fn: Any, args: tuple, calls: int) -> tuple[dict[str, float], str, str]:
    """(seconds per call by lane, auto's lane, auto's explanation)."""
    lanes = ["async"] if is_coroutine_function(fn) else ["inline", "thread", "process"]
    per_call: dict[str, float] = {}
    with multilane.Executor() as ex:
        for lane in lanes + ["auto"]:
            per_call[lane] = _time_lane(ex, fn, args, lane, calls)
        explanation = ex.explain(fn)
    chosen = next((p["lane"] for p in explanation.profiles if p["lane"]), "undecided")
    return per_call, chosen, str(explanation)


def run(target: str, arg_texts: list[str], calls: int) -> int:
    try:
        fn = load(target)
    except AdviseError as exc:
        print(f"multilane advise: {exc}", file=sys.stderr)
        return 2
    args = parse_args(arg_texts)
    print(f"Timing {calls} calls of {target}({', '.join(map(repr, args))}) in each lane...")
    try:
        per_call, chosen, explanation = measure(fn, args, calls)
    except Exception as exc:
        print(f"multilane advise: the call raised {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    best = min((t for lane, t in per_call.items() if lane != "auto"))
    print()
    print(f"{'lane':<10}{'per call':>14}{'vs best':>10}")
    for lane, seconds in sorted(per_call.items(), key=lambda item: item[1]):
        print(f"{lane:<10}{_fmt(seconds):>14}{seconds / best:>9.2f}x")
    fastest = min((lane for lane in per_call if lane != "auto"), key=per_call.__getitem__)
    print()
    print(f"Recommendation: lane={fastest!r} (fastest here); the auto lane chose {chosen!r}.")
    print(explanation)
    return 0


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds:.2f} s"
