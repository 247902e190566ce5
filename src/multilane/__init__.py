"""multilane: put every Python task in the right lane.

The public API only; each name is defined in exactly one private module.
"""

from concurrent.futures import (
    ALL_COMPLETED as ALL_COMPLETED,
)
from concurrent.futures import (
    FIRST_COMPLETED as FIRST_COMPLETED,
)
from concurrent.futures import (
    FIRST_EXCEPTION as FIRST_EXCEPTION,
)
from concurrent.futures import (
    CancelledError as CancelledError,
)
from concurrent.futures import (
    Future as Future,
)
from concurrent.futures import (
    TimeoutError as TimeoutError,
)
from concurrent.futures import (
    as_completed as as_completed,
)
from concurrent.futures import (
    wait as wait,
)
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

__version__ = "0.1.0"

__all__ = [
    "ALL_COMPLETED",
    "AllocatorStatistics",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "BrokenProcessPool",
    "CancelledError",
    "Error",
    "Executor",
    "Failed",
    "Future",
    "LANES",
    "LaneError",
    "Options",
    "Pipeline",
    "PoolStatistics",
    "ProcessPoolExecutor",
    "RemoteTraceback",
    "SerializationError",
    "TaskFunction",
    "TaskTimeout",
    "TimeoutError",
    "UnpicklingFailed",
    "WorkerCrashed",
    "__version__",
    "as_completed",
    "default_executor",
    "shared",
    "task",
    "wait",
    "zero_copy",
]
