"""Whether a caller blocked in ``result()`` spins for its reply or sleeps until the
collector thread settles it.

Spinning saves the two thread wake-ups a sleeping caller costs: a round trip of a no-op
took 20 µs with a 150 µs spin and 140-180 µs without, on 2 idle cores. It is free only
while a core is idle. With another process keeping one of 2 cores busy, the spinning
caller held the core its worker needed, and the same round trip took 110-220 µs,
against 61-65 µs sleeping. The spin was not preempted and still ended with the reply:
nothing in the spin itself tells that it was in the way, only the time the wait took.

So each pool times its callers' waits, from the first look to the reply, and keeps the
last ``KEPT`` of each way of waiting. A wait spins while spinning's median is below
sleeping's by ``MARGIN`` (a tie sleeps: it spends no CPU), and one wait in
``EXPLORE_EVERY`` tries the other way, so that both follow the machine. Until sleeping
has been timed, waits spin. A median, not a mean: under a busy neighbour one sleeping
wait in a few hundred took milliseconds, and a moving mean it lifted sent the waits back
to spinning until the next try of sleeping. Races between callers only blur the figures.
"""

from __future__ import annotations

from collections import deque

__all__ = ["EXPLORE_EVERY", "KEPT", "MARGIN", "RECHOOSE", "HelpSpin"]

KEPT = 5  # waits kept per way of waiting: the median of these decides
EXPLORE_EVERY = 256  # one wait in this many tries the way not chosen
MARGIN = 0.1  # spinning must be this much faster than sleeping to be chosen
RECHOOSE = 8  # waits between two looks at the medians


class HelpSpin:
    """One pool's choice between spinning and sleeping (see the module's text)."""

    __slots__ = ("_spun", "_slept", "_waits", "_fixed", "_prefer")

    def __init__(self, fixed: bool | None = None) -> None:
        self._spun: deque[float] = deque(maxlen=KEPT)  # the last waits that spun, seconds
        self._slept: deque[float] = deque(maxlen=KEPT)  # and that slept
        self._waits = 0
        self._fixed = fixed  # True: always spin, False: never (benchmarks compare); None
        self._prefer = fixed is not False

    def prefers_spinning(self) -> bool:
        """The way the medians chose when last looked at, exploration aside."""
        return self._prefer

    def spin_now(self) -> bool:
        """Whether this wait spins: the chosen way, or the other once every
        ``EXPLORE_EVERY`` waits."""
        if self._fixed is not None:
            return self._fixed
        self._waits += 1
        return self._prefer != (self._waits % EXPLORE_EVERY == 0)

    def waited(self, spun: bool, seconds: float) -> None:
        """A wait that spun (``spun``) or slept took ``seconds`` to its reply. The choice
        is looked at again after a wait of the way not chosen, and every ``RECHOOSE``
        waits (two medians of five cost about a microsecond: not on every wait)."""
        (self._spun if spun else self._slept).append(seconds)
        if self._fixed is None and (spun != self._prefer or self._waits % RECHOOSE == 0):
            spun_s, slept_s = self.medians
            self._prefer = slept_s is None or (
                spun_s is not None and spun_s < (1 - MARGIN) * slept_s)

    @property
    def medians(self) -> tuple[float | None, float | None]:
        """(spinning's median wait, sleeping's), in seconds; None until timed."""
        return _median(self._spun), _median(self._slept)


def _median(values: deque[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None
