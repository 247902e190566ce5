"""What the parts of the auto lane share: ``AutoLane`` (``_lane``: single calls, settling,
deciding), ``Exploring`` (``_exploring``: the probes' order, the warm-up), ``MapRouting``
(``_maps``: placing a map) and ``Spreading`` (``_spread``) are one object. This
declares, once, the attributes and the methods one part uses of the other, so each
module reads (and type-checks) on its own; ``AutoLane.__init__`` sets them up, and the
lane's lock (``_lock``) guards the profiles.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from .._options import TaskOptions
from ..lanes import LaneBase, Lanes
from ._machine import Machine
from ._profile import Profile
from ._verdict import Decision

__all__ = ["AutoState"]


class AutoState(LaneBase):
    """The attributes and cross-part methods of the auto lane (see the module's text)."""

    _router: Lanes  # the other lanes, reached only through it
    _cores: int
    _lock: threading.Lock
    _profiles: dict[tuple, Profile]
    _machine: Machine  # the cost model's per-machine parameters (``_machine``)
    _closed: bool

    # Defined by one part, called by the other.
    def _profile(self, fn: Any, args: tuple, kwargs: dict,
                 fkey: tuple | None = None) -> Profile:
        raise NotImplementedError

    def _next_probe_locked(self, p: Profile) -> str:
        raise NotImplementedError

    def _next_probe_from_backlog_locked(self, p: Profile) -> list:
        raise NotImplementedError

    def _send(self, p: Profile, lane: str, future: Any, fn: Any, args: tuple, kwargs: dict,
              options: TaskOptions | None = None) -> None:
        raise NotImplementedError

    def _send_all(self, p: Profile, calls: list) -> None:
        raise NotImplementedError

    def _settle(self, p: Profile, lane: str, future: Any, result: Any, wall: float,
                cpu: float, start: float, trip: tuple[float, float] | None, probe: str | None,
                stolen: bool = False, crowded: bool = False,
                gil: tuple[int, int, float] | None = None) -> None:
        raise NotImplementedError

    def _settle_probe_missing(self, p: Profile) -> None:
        raise NotImplementedError

    def _decide_locked(self, p: Profile, lane: str, verdict: str, basis: float,
                       revisit: int = 0) -> tuple:
        raise NotImplementedError

    def _release_locked(self, p: Profile, lane: str) -> list:
        raise NotImplementedError

    def _verdict_locked(self, p: Profile) -> tuple | None:
        raise NotImplementedError

    def _choose_locked(self, p: Profile) -> Decision | str:
        raise NotImplementedError

    def _after_probes_locked(self, p: Profile) -> list:
        raise NotImplementedError

    def _take_pair_locked(self, p: Profile, lane: str) -> tuple | None:
        raise NotImplementedError

    def _warm(self, p: Profile, call: tuple) -> None:
        raise NotImplementedError

    def _warm_decided(self, p: Profile, fn: Any) -> None:
        raise NotImplementedError

    def _unpicklable(self, p: Profile, call: tuple, error: BaseException) -> None:
        raise NotImplementedError

    def _outlived(self, p: Profile, timeout: float) -> None:
        raise NotImplementedError

    def _take_over_backlog(self, p: Profile) -> None:
        raise NotImplementedError

    def _widen_locked(self, p: Profile, calls: int) -> None:
        raise NotImplementedError

    def _widen_to_queue_locked(self, p: Profile) -> None:
        raise NotImplementedError

    def _remember_locked(self, p: Profile) -> None:
        raise NotImplementedError

    def _spread_pays_locked(self, p: Profile, calls: int) -> bool:
        raise NotImplementedError

    def _send_spread(self, p: Profile, calls: list, segments: list) -> None:
        raise NotImplementedError

    def _worth_chunks(self, p: Profile, calls: int, loaded: bool = True) -> bool:
        raise NotImplementedError

    def _confirm_early_locked(self, p: Profile, wall: float, cpu: float) -> None:
        raise NotImplementedError

    def _submit_each(self, p: Profile, lane: str, fn: Any, calls: Any) -> list:
        raise NotImplementedError

    def _run_segment(self, p: Profile, segment: Any, rebase: bool = False) -> None:
        raise NotImplementedError

    def _drain_while_probing(self, p: Profile) -> None:
        raise NotImplementedError

    def _send_segments(self, p: Profile, lane: str, segments: list) -> None:
        raise NotImplementedError

    def _send_chunks(self, calls: list) -> None:
        raise NotImplementedError

    def _run_batch(self, p: Profile, calls: list, segments: list) -> None:
        raise NotImplementedError

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> Future:
        raise NotImplementedError
