"""How a profile explores: which probe comes next, the warm-up of the workers, and what
ends a probe that taught nothing or decided at once (a call seen waiting, a call past
its timeout, a function no process can take). Part of AutoLane (see _state); the
measuring is ``_probes``', the deciding ``_verdict``'s."""

from __future__ import annotations

import functools
from typing import Any

from .._future import LaneFuture, gather
from ..buffers._serialize import dumps_function
from ..errors import SerializationError
from ._params import EARLY_S
from ._probes import PairGate
from ._profile import Profile, overlapped
from ._remote import load_probe
from ._segments import copy_outcome, failed
from ._state import AutoState
from ._verdict import best_known

__all__ = ["Exploring", "rewound"]


class Exploring(AutoState):
    """The exploring part of AutoLane (see _state)."""

    def _next_probe_locked(self, p: Profile) -> str:
        """The lane of the next exploring call (probes_out must be 0)."""
        if p.coroutine:
            self._decide_locked(p, "async", "a coroutine function: it waits on its loop", 0.0)
            return "async"
        found = self._choose_locked(p)
        if isinstance(found, tuple):  # decided without a probe: its calls go there
            self._decide_locked(p, *found)
            return found[0]
        if found == "solo":
            p.probes_out = 1
            return "probe:solo"
        if found == "cluster":
            p.probes_out = 1  # one call there, its round trip and work timed (``_settle``)
            return "probe:cluster"
        if found == "pair":
            # Two calls at once on threads (``choose`` wants one only while it could show
            # threads faster: not once the GIL-wait probes found the GIL held, see
            # ``pair_wanted``).
            p.pair_tries += 1
            p.probes_out = 2
            p.pair.clear()
            p.pair_stolen = False
            p.pair_gate = PairGate()
            return "probe:pair"
        if p.pairs_judged == 0:
            p.no_pair = True  # they never ran together: judge without the pair
        p.probes_out = 1
        if not p.warmed:
            # The workers load the function first, with no call of it waiting on that; the
            # calls that wait for the decision run meanwhile (``_drain_while_probing``),
            # and the calls submitted meanwhile go where the model would send them now.
            p.warming = True
            p.guess = best_known(p, self._machine)
            return "probe:warm"
        return "probe:process"

    def _take_pair_locked(self, p: Profile, lane: str) -> tuple | None:
        """The second call of a pair probe, from the backlog; without one, the next submit
        joins the pair (``pair_open``): a submit waits for a short solo probe, so that
        its own next submits do not slow the call timed, and leaves no backlog behind.
        If none comes in time, the pair test is skipped (calls submitted one at a time
        cannot run two at once: see ``_settle``)."""
        if lane != "probe:pair":
            return None
        if p.backlog:
            return p.backlog.popleft()
        p.probes_out, p.pair_open = 1, True
        return None

    def _settle_probe_missing(self, p: Profile) -> None:
        with self._lock:
            p.probes_out -= 1
            if p.probes_out:
                return
            p.pair_open = False
            if p.pair and not overlapped(p.pair):
                p.pair.clear()
            release = self._next_probe_from_backlog_locked(p)
        self._send_all(p, release)

    def _take_over_backlog(self, p: Profile) -> None:
        """On the watcher's thread, a first solo probe having waited EARLY_S: decide
        "thread" now and send the calls waiting behind it there; its end confirms it or
        explores again (``_confirm_early_locked``)."""
        with self._lock:
            if not (p.exploring and p.solo is None and p.probes_out == 1) or self._closed:
                return
            p.early = True
            self._decide_locked(p, "thread", "waiting (seen while its first call ran)",
                                EARLY_S)
            queued = self._release_locked(p, "thread")
        self._send_all(p, queued)

    def _warm(self, p: Profile, call: tuple) -> None:
        """The warm-up probe: every worker loads the function (``load_probe`` on one,
        timed; ``preload`` on the others), while ``call``, first in line again, and the
        rest of the backlog run here or on a thread."""
        try:
            inner = self._load_everywhere(call[1])
        except SerializationError as exc:
            self._unpicklable(p, call, exc)
            return
        with self._lock:
            p.backlog.appendleft(call)
        self._drain_while_probing(p)
        inner.add_done_callback(functools.partial(self._warmed, p))

    def _warm_decided(self, p: Profile, fn: Any) -> None:
        """Has the workers load a function decided inline whose calls would gain in
        process chunks, once: no call waits on that; the caller runs them meanwhile (see
        ``MapRouting._map_decided``)."""
        with self._lock:
            if p.warmed or p.warming:
                return
            p.warming = True
        try:
            inner = self._load_everywhere(fn)
        except SerializationError as exc:
            inner = failed(exc)
        inner.add_done_callback(functools.partial(self._loaded, p))

    def _load_everywhere(self, fn: Any) -> Any:
        """Sends ``fn`` to every worker to load: the future of the set-up one of them
        timed (failed if the process lane is shut down). Raises SerializationError if
        ``fn`` cannot be pickled."""
        pickled = dumps_function(fn)
        process = self._router.lane("process", internal=True)
        try:
            inner = process.submit(load_probe, (pickled,), {})
        except BaseException as exc:  # the lane is shut down
            return failed(exc)
        process.preload(fn)
        return inner

    def _loaded(self, p: Profile, inner: Any) -> None:
        with self._lock:
            self._loaded_locked(p, inner)

    def _loaded_locked(self, p: Profile, inner: Any) -> None:
        """The workers loaded the function (its set-up: ``inner``'s result), or could
        not: then no process can run it."""
        error = inner.exception()
        p.warmed, p.warming = True, False
        if error is None:
            p.setup_seen = max(p.setup_seen, inner.result())
        elif isinstance(error, SerializationError):
            p.unpicklable = f"it cannot be pickled for a process ({error})"
        else:
            p.unpicklable = f"a worker cannot load it ({type(error).__name__}: {error})"

    def _warmed(self, p: Profile, inner: Any) -> None:
        """The warm-up probe ended (see ``_loaded_locked``)."""
        with self._lock:
            self._loaded_locked(p, inner)
            p.probes_out -= 1
            release = self._after_probes_locked(p) if not p.probes_out else []
        self._send_all(p, release)

    def _unpicklable(self, p: Profile, call: tuple, error: BaseException) -> None:
        """A process probe's function or arguments cannot be pickled: the call never ran,
        and goes back first in line; the profile is decided without processes."""
        with self._lock:
            p.unpicklable = f"it cannot be pickled for a process ({type(error).__name__}: {error})"
            p.backlog.appendleft(call)
            p.probes_out -= 1
            p.warming = False
            release = self._after_probes_locked(p) if not p.probes_out else []
        self._send_all(p, release)

    def _outlived(self, p: Profile, timeout: float) -> None:
        """A probe ran past its timeout on a thread, which cannot stop it (it runs on
        there, as on the thread lane): only a process can stop such a call, so the
        function's calls go to processes from now on."""
        with self._lock:
            p.probes_out = max(0, p.probes_out - 1)
            if not (p.exploring or p.early):  # (an early "thread", on this very call, yields)
                return
            p.early = False
            self._decide_locked(p, "process", "ran past its timeout on a thread, which "
                                "cannot stop it: a process can", timeout)
            release = self._release_locked(p, "process")
        self._send_all(p, release)

    def _next_probe_from_backlog_locked(self, p: Profile) -> list:
        while not p.backlog and p.bulk and not self._closed:
            # More probes than a map's first calls: the next segment's calls go one by one.
            segment = p.bulk.popleft().seal()
            if segment.piece.done():
                continue  # cancelled
            futures = [LaneFuture() for _ in range(len(segment))]
            gather(futures, segment.piece)
            p.backlog.extend((future, segment.fn, args, {}, None)
                             for future, args in zip(futures, segment.calls(), strict=True))
        if not p.backlog or self._closed:
            return []  # the next submit explores
        lane = self._next_probe_locked(p)
        if not p.exploring:  # decided without a probe (a coroutine function): all go
            return self._release_locked(p, lane)
        first = p.backlog.popleft()
        second = self._take_pair_locked(p, lane)
        return [(lane, *first)] + ([(lane, *second)] if second is not None else [])

    def _after_probes_locked(self, p: Profile) -> list:
        """A probe round ended: decide if the evidence suffices and release the backlog,
        else send the next probe. Returns the calls to send now."""
        verdict = self._verdict_locked(p)
        if verdict is None:
            return self._next_probe_from_backlog_locked(p)
        return self._release_locked(p, verdict[0])


def rewound(future: LaneFuture) -> LaneFuture:
    """A pending future standing for ``future``, which is already running: its outcome
    goes to ``future`` (a call that never ran is sent again)."""
    fresh = LaneFuture()
    fresh.add_done_callback(functools.partial(copy_outcome, future))
    return fresh
