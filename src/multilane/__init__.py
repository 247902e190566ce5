"""multilane: put every Python task in the right lane.

The public API only; each name is defined in exactly one private module, and imported
from it the first time it is used (PEP 562): a worker process imports ``multilane.worker``,
and so this package, and would otherwise pay for the executor, the auto lane and the
pipeline on every start (0.2 s of a worker's 0.25 s start-up here).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name, and the module that defines it.
_WHERE = {
    "ALL_COMPLETED": "concurrent.futures",
    "AllocatorStatistics": ".buffers._zero_copy",
    "FIRST_COMPLETED": "concurrent.futures",
    "FIRST_EXCEPTION": "concurrent.futures",
    "BrokenProcessPool": "concurrent.futures.process",
    "CancelledError": "concurrent.futures",
    "Error": ".errors",
    "Executor": "._executor",
    "Failed": "._pipeline",
    "Future": "concurrent.futures",
    "LANES": "._executor",
    "LaneError": ".errors",
    "Options": "._view",
    "Pipeline": "._pipeline",
    "PoolStatistics": ".lanes.process",
    "ProcessPoolExecutor": ".lanes.process",
    "RemoteTraceback": ".errors",
    "SerializationError": ".errors",
    "TaskFunction": "._task",
    "TaskTimeout": ".errors",
    "TimeoutError": "concurrent.futures",
    "UnpicklingFailed": ".errors",
    "WorkerCrashed": ".errors",
    "as_completed": "concurrent.futures",
    "default_executor": "._task",
    "shared": ".buffers._shared",
    "task": "._task",
    "wait": "concurrent.futures",
    "zero_copy": ".buffers._zero_copy",
}

__all__ = [*_WHERE, "__version__"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'multilane' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next use finds it at once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from concurrent.futures import ALL_COMPLETED as ALL_COMPLETED
    from concurrent.futures import FIRST_COMPLETED as FIRST_COMPLETED
    from concurrent.futures import FIRST_EXCEPTION as FIRST_EXCEPTION
    from concurrent.futures import CancelledError as CancelledError
    from concurrent.futures import Future as Future
    from concurrent.futures import TimeoutError as TimeoutError
    from concurrent.futures import as_completed as as_completed
    from concurrent.futures import wait as wait
    from concurrent.futures.process import BrokenProcessPool as BrokenProcessPool

    from ._executor import LANES as LANES
    from ._executor import Executor as Executor
    from ._pipeline import Failed as Failed
    from ._pipeline import Pipeline as Pipeline
    from ._task import TaskFunction as TaskFunction
    from ._task import default_executor as default_executor
    from ._task import task as task
    from ._view import Options as Options
    from .buffers._shared import shared as shared
    from .buffers._zero_copy import AllocatorStatistics as AllocatorStatistics
    from .buffers._zero_copy import zero_copy as zero_copy
    from .errors import Error as Error
    from .errors import LaneError as LaneError
    from .errors import RemoteTraceback as RemoteTraceback
    from .errors import SerializationError as SerializationError
    from .errors import TaskTimeout as TaskTimeout
    from .errors import UnpicklingFailed as UnpicklingFailed
    from .errors import WorkerCrashed as WorkerCrashed
    from .lanes.process import PoolStatistics as PoolStatistics
    from .lanes.process import ProcessPoolExecutor as ProcessPoolExecutor
