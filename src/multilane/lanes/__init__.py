"""The lanes: where calls run. One protocol (``Lane``), one registry (``Lanes``)."""

from ._lane import Lane as Lane
from ._lane import LaneBase as LaneBase
from ._registry import LaneKind as LaneKind
from ._registry import Lanes as Lanes

__all__ = ["Lane", "LaneBase", "LaneKind", "Lanes"]
