"""The auto lane: measures each function as it runs and routes its calls to the fastest
lane, and explains why. ``_probes`` measure, ``_profile`` holds the evidence,
``_verdict`` decides, ``_lane`` routes, ``_explain`` tells.

The package imports its parts only when asked for them: a worker process runs the
probes' functions (``_probes``), and importing the whole lane there cost each worker
about 45 ms on its first probe, time the probe read as a round trip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._explain import Explanation as Explanation
    from ._lane import AutoLane as AutoLane
    from ._lane import AutoStatistics as AutoStatistics

__all__ = ["AutoLane", "AutoStatistics", "Explanation"]


def __getattr__(name: str) -> Any:
    if name in ("AutoLane", "AutoStatistics"):
        from . import _lane

        return getattr(_lane, name)
    if name == "Explanation":
        from ._explain import Explanation

        return Explanation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
