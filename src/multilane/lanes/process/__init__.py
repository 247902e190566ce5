"""The process and hybrid lanes: ``ProcessPoolExecutor`` (the drop-in for the standard
one, split by concern into the modules beside this one) and ``ProcessLane`` (the pool
seen through the lane protocol)."""

from ._pool import ProcessPoolExecutor as ProcessPoolExecutor
from ._records import PoolStatistics as PoolStatistics
from .lane import ProcessLane as ProcessLane

__all__ = ["PoolStatistics", "ProcessLane", "ProcessPoolExecutor"]
