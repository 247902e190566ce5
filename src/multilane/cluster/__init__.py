"""The cluster lane: calls on Dask or Ray when one machine is not enough.

``multilane.Executor(cluster="dask")`` (or ``"ray"``, or a backend object such as
``multilane.cluster.Dask("tcp://scheduler:8786")``) adds the lane ``"cluster"``::

    with multilane.Executor(cluster="dask") as ex:
        totals = list(ex.options(lane="cluster").map(simulate, seeds))

Every backend implements :class:`Cluster`; the lane (``_lane.py``) gives them all the
same futures, window, retries, timeouts and shared objects.
"""

from __future__ import annotations

from typing import Any

from ._backend import Cluster
from ._lane import ClusterLane, ClusterStatistics

__all__ = ["BACKENDS", "Cluster", "ClusterLane", "ClusterStatistics", "backend"]

BACKENDS = ("dask", "ray")


def backend(spec: Any) -> Cluster:
    """The backend ``spec`` names: ``"dask"``, ``"ray"``, or a :class:`Cluster`."""
    if spec == "dask":
        from .dask import Dask

        return Dask()
    if spec == "ray":
        from .ray import Ray

        return Ray()
    if isinstance(spec, Cluster):
        return spec
    raise ValueError(f"cluster must be one of {', '.join(map(repr, BACKENDS))} or a "
                     f"multilane.cluster.Cluster object, not {spec!r}")
