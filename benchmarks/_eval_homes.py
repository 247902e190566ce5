"""Where a workload's function lives: the source auto_eval writes for it.

``module``: ``work`` is a top-level function of a module file in the run's directory (on
``sys.path``): workers import it, paying its import on their first call, as they would a
user's module. Importing it may be slow for a realistic reason: a table computed at import
for 50 to 300 ms, heavy standard-library modules, NumPy.

``closure``: that module has a factory; ``work`` is made at run time and captures the
workload's arguments. A closure is pickled by value, so workers do not import the module.

``main``: ``work`` is defined in the ``__main__`` script of the measuring process, as in a
user's script; cloudpickle sends it by value.
"""

from __future__ import annotations

import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "_eval_child.py")
TABLE_ITEMS_PER_MS = 25_000  # a list comprehension's items per ms on the 2-core VM


def module_name(workload_id: str) -> str:
    return "wl_" + workload_id.replace("-", "_")


def _prelude(slow: dict[str, Any]) -> str:
    if slow["kind"] == "table":
        n = slow["ms"] * TABLE_ITEMS_PER_MS
        return f"TABLE = [i * i % 7919 for i in range({n})]  # ~{slow['ms']} ms at import\n"
    if slow["kind"] == "stdlib":
        return "".join(f"import {name}  # noqa: F401\n" for name in slow["modules"])
    if slow["kind"] == "numpy":
        return "try:\n    import numpy  # noqa: F401\nexcept ImportError:\n    numpy = None\n"
    return ""


def _call(kernel: str, args: dict[str, Any]) -> str:
    return f"{kernel}(x" + "".join(f", {k}={v!r}" for k, v in args.items()) + ")"


def source(workload: dict[str, Any]) -> str:
    """The text of the workload's module (``module``, ``closure``) or script (``main``)."""
    kernel, args, home = workload["kernel"], workload["args"], workload["home"]
    head = f'"""auto_eval workload {workload["id"]} ({home})."""\n'
    if home == "closure":
        return (head + _prelude(workload["slow_import"])
                + f"from _eval_kernels import {kernel}\n\n\n"
                f"def make(args):\n    def work(x):\n        return {kernel}(x, **args)\n"
                "    return work\n")
    body = (f"from _eval_kernels import {kernel}\n\n\n"
            f"def work(x):\n    return {_call(kernel, args)}\n")
    if home == "module":
        return head + _prelude(workload["slow_import"]) + body
    return (head + body + '\n\nif __name__ == "__main__":\n    import _eval_child\n\n'
            "    _eval_child.main(work)\n")


def write(workload: dict[str, Any], directory: str) -> str:
    """Writes the workload's home into ``directory``; returns the script the measuring
    process runs (``_eval_child.py``, or the ``main`` script)."""
    name = module_name(workload["id"])
    path = os.path.join(directory, (name + "_main" if workload["home"] == "main" else name)
                        + ".py")
    with open(path, "w") as f:
        f.write(source(workload))
    return path if workload["home"] == "main" else CHILD


def python_path(directory: str) -> str:
    """PYTHONPATH for the measuring process (its workers adopt its sys.path)."""
    return os.pathsep.join([directory, HERE, *filter(None, [os.environ.get("PYTHONPATH")])])


def function(workload: dict[str, Any]) -> Any:
    """``work``, imported from its module or made by its factory (not for ``main``)."""
    import importlib

    module = importlib.import_module(module_name(workload["id"]))
    return module.make(dict(workload["args"])) if workload["home"] == "closure" else module.work

