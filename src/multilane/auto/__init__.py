"""The auto lane: measures each function as it runs and routes its calls to the fastest
lane, and explains why. ``_probes`` measure, ``_profile`` holds the evidence,
``_verdict`` decides, ``_lane`` routes, ``_explain`` tells."""

from ._explain import Explanation as Explanation
from ._lane import AutoLane as AutoLane
from ._lane import AutoStatistics as AutoStatistics

__all__ = ["AutoLane", "AutoStatistics", "Explanation"]
