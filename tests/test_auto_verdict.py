"""The auto lane's decision rules, table-driven from recorded evidence: no timing, no lanes.

Each row is a profile as the probes would leave it and the decision that must follow. The
figures are of the kind the probes record (seconds; cores used by a pair; GIL-wait counts).
"""

from __future__ import annotations

import pytest

from multilane.auto._params import THREAD_START_S
from multilane.auto._profile import Profile
from multilane.auto._verdict import Decision, spread_gain, verdict, waiting_concurrency

MS = 1e-3


def profile(**evidence) -> Profile:
    """A profile explored as ``evidence`` says: two solo probes unless told otherwise."""
    p = Profile("f", 0, False)
    p.solo_runs = 2
    for name, value in evidence.items():
        setattr(p, name, value)
    return p


COMPUTING = {"solo": (10 * MS, 10 * MS)}  # 10 ms alone, all of it on the CPU
HELD = {**COMPUTING, "gil_held": 2, "gil_longest": 5 * MS}
RELEASED = {**COMPUTING, "gil_released": 2, "gil_longest": 0.004 * MS}
CHEAP_TRIP = {"transport_seen": 0.5 * MS, "sending_seen": 0.1 * MS, "process_work": 10 * MS,
              "process_probes": 1}

# (name, evidence, cores, free-threaded, lane or None, words of the reason)
ROWS = [
    ("nothing timed yet", {"solo": None, "solo_runs": 0}, 2, False, None, ""),
    ("one solo of a middling call wants a second", {"solo": (3 * MS, 3 * MS), "solo_runs": 1},
     2, False, None, ""),
    ("tiny", {"solo": (10e-6, 10e-6)}, 2, False, "inline", "tiny"),
    ("tiny after one solo", {"solo": (10e-6, 10e-6), "solo_runs": 1}, 2, False, "inline",
     "tiny"),
    ("waiting", {"solo": (10 * MS, 1 * MS)}, 2, False, "thread", "mostly waiting"),
    ("computing, free-threaded", COMPUTING, 2, True, "thread", "free-threaded"),
    ("a pair that gained on two cores", {**COMPUTING, "parallel_seen": 1.8,
                                         "speedup_seen": 1.6}, 2, False, "thread",
     "without holding the GIL"),
    ("its own threads keep every core busy", {**COMPUTING, "solo_crowded": True}, 2, False,
     "inline", "every core already"),
    ("released, a pair on two cores no slower than two in a row",
     {**RELEASED, "parallel_seen": 1.5, "speedup_seen": 1.05, "pairs_judged": 1,
      "pair_tries": 1}, 2, False, "thread", "without holding the GIL (the watcher waited"),
    ("released, a pair that lost on two cores: a shared limit",
     {**RELEASED, "parallel_seen": 1.5, "speedup_seen": 0.8, "pairs_judged": 1,
      "pair_tries": 1}, 2, False, "inline", "share some other limit"),
    ("released, every pair robbed of a core", {**RELEASED, "pairs_judged": 0, "pair_tries": 3},
     2, False, "thread", "no pair could run on two free cores"),
    ("released, a pair still to try", {**RELEASED, "pair_tries": 0}, 2, False, None, ""),
    ("held, before the process probe", HELD, 2, False, None, ""),
    ("held, the transport is cheap", {**HELD, **CHEAP_TRIP}, 2, False, "process",
     "computing with the GIL held"),
    ("a clean pair on one core, the transport is cheap",
     {**COMPUTING, **CHEAP_TRIP, "pair": [(20 * MS, 10 * MS, 0.0), (20 * MS, 10 * MS, 0.0)],
      "pairs_judged": 1, "pair_tries": 1}, 2, False, "process", "computing with the GIL held"),
    ("a slow first call in a worker gets one more look",
     {**HELD, **CHEAP_TRIP, "process_work": 20 * MS}, 2, False, None, ""),
    ("a slow worker seen twice is believed",
     {**HELD, **CHEAP_TRIP, "process_work": 20 * MS, "process_probes": 2}, 2, False, "inline",
     "no faster on 2 processes"),
    ("one core: no process gains", {**HELD, **CHEAP_TRIP}, 1, False, "inline",
     "no faster on 1 processes"),
    ("held, but it cannot be pickled", {**HELD, "unpicklable": "it cannot be pickled"}, 2,
     False, "inline", "cannot be pickled"),
    ("a slow import is set-up, not transport", {**HELD, **CHEAP_TRIP, "setup_seen": 0.2}, 2,
     False, "process", "computing with the GIL held"),
    ("its bytes cost more to ship than the call: no process probe",
     {**HELD, "arg_bytes": 64 << 20}, 2, False, "inline", "costs more than the call"),
    ("one core: no process probe", HELD, 1, False, "inline", "no faster on 1 processes"),
    ("the transport outweighs the work",
     {**HELD, "transport_seen": 30 * MS, "sending_seen": 5 * MS, "process_work": 10 * MS,
      "process_probes": 1}, 2, False, "inline", "too little to outweigh the transport"),
]


@pytest.mark.parametrize("name, evidence, cores, free_threaded, lane, words", ROWS,
                         ids=[row[0] for row in ROWS])
def test_verdict(name, evidence, cores, free_threaded, lane, words):
    found = verdict(profile(**evidence), cores, free_threaded)
    if lane is None:
        assert found is None
        return
    assert isinstance(found, Decision)
    assert found.lane == lane and words in found.reason, found


def test_the_verdict_changes_nothing_it_reads():
    p = profile(**HELD, **CHEAP_TRIP)
    before = repr(p)
    verdict(p, 2)
    assert repr(p) == before


def test_a_process_decision_is_based_on_the_workers_time():
    found = verdict(profile(**{**HELD, **CHEAP_TRIP, "process_work": 12 * MS}), 2)
    assert found == Decision("process", found.reason, 12 * MS)


# (name, wall, cpu, calls, floor, ceiling, calls at once)
CONCURRENCY = [
    # 100 sleeps of 10 ms: past the cost of starting threads, sqrt(100 * 10 ms / start).
    ("sleeps: what starting threads costs", 10 * MS, 0.03 * MS, 100, 6, 256,
     int((100 * 10 * MS / THREAD_START_S) ** 0.5)),
    ("few calls: one thread each", 10 * MS, 0.03 * MS, 20, 6, 256, 20),
    ("the GIL is the limit: wall / cpu", 1 * MS, 0.25 * MS, 10_000, 2, 256, 4),
    ("never fewer than the threads allowed already", 1 * MS, 0.5 * MS, 10_000, 6, 256, 6),
    ("never past the ceiling the user gave", 100 * MS, 0.01 * MS, 100_000, 6, 8, 8),
]


@pytest.mark.parametrize("name, wall, cpu, calls, floor, ceiling, expected", CONCURRENCY,
                         ids=[row[0] for row in CONCURRENCY])
def test_waiting_concurrency(name, wall, cpu, calls, floor, ceiling, expected):
    assert waiting_concurrency(wall, cpu, calls, floor, ceiling) == expected


# (name, wall, cpu, calls, threads, cores, bytes, gains)
SPREAD = [
    ("the GIL holds threads back: two processes halve it", 0.7 * MS, 0.3 * MS, 300, 64, 2, 0,
     True),
    ("sleeps barely hold the GIL: threads suffice", 10 * MS, 0.02 * MS, 300, 256, 2, 0, False),
    ("one core: nothing to spread over", 0.7 * MS, 0.3 * MS, 300, 64, 1, 0, False),
    ("a megabyte each costs more to send than the GIL saves", 0.7 * MS, 0.3 * MS, 300, 64, 2,
     1 << 20, False),
]


@pytest.mark.parametrize("name, wall, cpu, calls, threads, cores, shipped, gains", SPREAD,
                         ids=[row[0] for row in SPREAD])
def test_spread_gain(name, wall, cpu, calls, threads, cores, shipped, gains):
    assert (spread_gain(wall, cpu, calls, threads, cores, shipped) > 0.02) is gains
