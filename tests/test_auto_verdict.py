"""The auto lane's decision rules, table-driven from recorded evidence: no timing, no lanes.

Each row is a profile as the probes would leave it and the decision that must follow. The
figures are of the kind the probes record (seconds; cores used by a pair; GIL-wait counts).
"""

from __future__ import annotations

import math

import pytest

from multilane.auto._machine import Machine
from multilane.auto._params import (
    PROCESS_START_S,
    PROCESS_TRIP_S,
    REFERENCE_SHIP_BYTE_S,
    SHIP_BYTE_S,
    THREAD_CALL_S,
    THREAD_START_S,
)
from multilane.auto._profile import Profile
from multilane.auto._verdict import (
    Decision,
    choose,
    estimates,
    spread_gain,
    verdict,
    waiting_concurrency,
)

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
    ("the same, the call itself waiting on those threads part of the time",
     {"solo": (10 * MS, 6 * MS), "solo_crowded": True}, 2, False, "inline",
     "every core already"),
    ("released, a pair on two cores a little faster than two in a row",
     {**RELEASED, "parallel_seen": 1.5, "speedup_seen": 1.15, "pairs_judged": 1,
      "pair_tries": 1}, 2, False, "thread", "without holding the GIL (the watcher waited"),
    ("released, a pair that gained less than the model's margin",
     {**RELEASED, "parallel_seen": 1.5, "speedup_seen": 1.03, "pairs_judged": 1,
      "pair_tries": 1}, 2, False, "inline", "gained too little"),
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
    ("no worker can load it, on a crowded machine: the first is the reason",
     {**HELD, "unpicklable": "a worker cannot load it", "solo_crowded": True}, 2, False,
     "inline", "a worker cannot load it"),
    ("a slow import is set-up, not transport", {**HELD, **CHEAP_TRIP, "setup_seen": 0.2}, 2,
     False, "process", "computing with the GIL held"),
    ("its bytes cost more to ship than the call: no process probe",
     {**HELD, "arg_bytes": 64 << 20}, 2, False, "inline", "costs more than the call"),
    ("one core: no process probe", HELD, 1, False, "inline", "no faster on 1 processes"),
    ("a slow round trip gets one more look",
     {**HELD, "transport_seen": 30 * MS, "sending_seen": 5 * MS, "process_work": 10 * MS,
      "process_probes": 1}, 2, False, None, ""),
    ("the transport outweighs the work",
     {**HELD, "transport_seen": 30 * MS, "sending_seen": 5 * MS, "process_work": 10 * MS,
      "process_probes": 2}, 2, False, "inline", "too little to outweigh the transport"),
    ("a round trip near the machine's for its bytes is believed",
     {**HELD, "transport_seen": 12 * MS, "arg_bytes": 8 << 20, "sending_seen": 5 * MS,
      "process_work": 10 * MS, "process_probes": 1}, 2, False, "inline",
     "too little to outweigh the transport"),
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


PARTLY_WAITING = {"solo": (1 * MS, 0.7 * MS)}  # computing 70% of its time, GIL not probed

# (name, evidence, cores, calls so far, what ``choose`` says: a lane or a probe)
CHOICES = [
    ("a first call is timed alone", {"solo": None, "solo_runs": 0}, 2, None, "solo"),
    ("computing, GIL unknown: a pair may show threads faster", COMPUTING, 2, None, "pair"),
    ("computing, GIL held: the process probe is next", HELD, 2, None, "process"),
    ("GIL held on one core: nothing to probe", HELD, 1, None, "inline"),
    ("computing 70% of its time, GIL held, a dear round trip: its gap is no wait to "
     "overlap", {**PARTLY_WAITING, "gil_held": 2, "gil_longest": 5 * MS,
                 "transport_seen": 1.2 * MS, "sending_seen": 0.1 * MS, "process_work": 1 * MS,
                 "process_probes": 2}, 2, None, "inline"),
    ("waiting 60% of its time, GIL held: threads overlap the waits",
     {"solo": (1 * MS, 0.4 * MS), "gil_held": 2, "gil_longest": 5 * MS}, 2, None, "thread"),
    ("computing 70% of its time with a cheap round trip: processes",
     {**PARTLY_WAITING, "gil_held": 2, "gil_longest": 5 * MS, "transport_seen": 0.05 * MS,
      "sending_seen": 0.01 * MS, "process_work": 1 * MS, "process_probes": 1}, 2, None,
     "process"),
    ("mostly waiting: no pair, no process probe on 2 cores", {"solo": (10 * MS, 1 * MS)}, 2,
     None, "thread"),
    ("partly waiting on 8 cores: processes may beat threads, the probe is next",
     {"solo": (10 * MS, 4 * MS), "no_pair": True}, 8, None, "process"),
    # The exploration budget: a probe costs PROCESS_TRIP_S, at most EXPLORE_BUDGET of the
    # calls' estimated time (the calls so far and as many to come).
    ("two calls of 100 µs are too few to pay for a process probe",
     {"solo": (0.1 * MS, 0.1 * MS), "gil_held": 2}, 2, 2, "inline"),
    ("a thousand are enough", {"solo": (0.1 * MS, 0.1 * MS), "gil_held": 2}, 2, 1000,
     "process"),
    # Before the workers have loaded the function, the probe also costs that (SETUP_S).
    ("two hundred calls of 100 µs do not pay for the workers' first load",
     {"solo": (0.1 * MS, 0.1 * MS), "gil_held": 2}, 2, 200, "inline"),
    ("once they have loaded it, two hundred pay for a round trip",
     {"solo": (0.1 * MS, 0.1 * MS), "gil_held": 2, "warmed": True}, 2, 200, "process"),
    # A call KNOWN_TRIPS times its round trip needs no process probe once the workers
    # have loaded its function: the machine's trip is estimate enough.
    ("held, a long call, loaded by the workers: processes without a probe",
     {**HELD, "warmed": True}, 2, 4, "process"),
    ("held, a long call, not loaded yet: the probe loads it first", HELD, 2, 4, "process"),
    ("held, a call under KNOWN_TRIPS round trips, loaded: the probe is still wanted",
     {"solo": (1 * MS, 1 * MS), "gil_held": 2, "gil_longest": 5 * MS, "warmed": True}, 2,
     1000, "process"),
    ("held, a long call whose bytes cost more to ship: no shortcut",
     {**HELD, "warmed": True, "arg_bytes": 64 << 20}, 2, 4, "inline"),
]


@pytest.mark.parametrize("name, evidence, cores, calls, expected", CHOICES,
                         ids=[row[0] for row in CHOICES])
def test_choose(name, evidence, cores, calls, expected):
    found = choose(profile(**evidence), Machine(cores), calls)
    assert (found.lane if isinstance(found, Decision) else found) == expected, found


def test_workers_not_up_are_started_only_for_calls_that_could_pay_for_it():
    machine = Machine(2)
    # 10 ms calls, at best 5 ms a call on two processes: 24 of them gain at most 0.12 s,
    # less than starting the workers (PROCESS_START_S); 100 gain enough.
    few = choose(profile(**HELD), machine, 24, started=False)
    assert isinstance(few, Decision) and few.lane == "inline"
    assert few.revisit == math.ceil(PROCESS_START_S / (5 * MS)) and "starting the workers" \
        in few.reason
    assert choose(profile(**HELD), machine, 100, started=False) == "process"
    assert choose(profile(**HELD), machine, 24, started=True) == "process"
    # Four calls of a quarter of a second gain half a second at best: enough.
    long = {**HELD, "solo": (250 * MS, 250 * MS)}
    assert choose(profile(**long), machine, 4, started=False) == "process"


def test_a_long_call_is_estimated_on_a_process_from_the_machine_once_loaded():
    machine = Machine(2)
    assert estimates(profile(**HELD), machine)["process"].seconds == float("inf")
    loaded = estimates(profile(**HELD, warmed=True), machine)["process"]
    assert loaded.seconds == pytest.approx((10 * MS + machine.process_trip_s) / 2)
    # Under KNOWN_TRIPS round trips, only a probe tells.
    short = profile(solo=(1 * MS, 1 * MS), gil_held=2, warmed=True)
    assert estimates(short, machine)["process"].seconds == float("inf")


def test_too_few_calls_for_a_probe_say_when_it_would_pay():
    p = profile(solo=(0.1 * MS, 0.1 * MS), gil_held=2, calls=2)
    found = choose(p, Machine(2), 2)
    assert isinstance(found, Decision) and found.revisit > 2
    assert "too few to pay for a process probe" in found.reason
    # At that many calls the budget holds a probe.
    assert choose(p, Machine(2), found.revisit) == "process"
    p.decide(found.lane, found.reason, found.basis, found.revisit)
    p.calls = found.revisit - 1
    assert not p.drifted()
    p.calls = found.revisit
    assert p.drifted() and p.exploring and "enough to pay for a process probe" in p.verdict


def test_a_revisit_keeps_the_evidence_and_takes_the_time_timed_here():
    # Only the process probe was missing: the solo probes are not run again (on a thread,
    # beside a caller still submitting, they read a 22 µs call as 150 µs, mostly
    # waiting). The time per call timed here since stands for the solo's.
    p = profile(solo=(0.1 * MS, 0.1 * MS), gil_held=2, gil_longest=5 * MS, calls=2)
    found = choose(p, Machine(2), 2)
    assert isinstance(found, Decision) and found.lane == "inline" and found.revisit > 2
    p.decide(found.lane, found.reason, found.basis, found.revisit)
    p.record("inline", 0.04 * MS * 8, 0.04 * MS * 8, 8)
    p.calls = found.revisit
    assert p.drifted() and p.exploring
    assert p.solo == pytest.approx((0.04 * MS, 0.04 * MS)) and p.solo_runs == 2
    assert p.gil == "held" and not p.solo_wanted()


def test_a_revisit_comes_as_soon_as_the_calls_timed_here_took_long_enough():
    # A cost that varies: two solo probes of 0.1 ms, calls of 2 ms on average. The probe
    # the decision could not pay for is paid by the calls' time, not by their count.
    p = profile(solo=(0.1 * MS, 0.1 * MS), gil_held=2, calls=2)
    found = choose(p, Machine(2), 2)
    assert isinstance(found, Decision) and found.revisit > 40
    p.decide(found.lane, found.reason, found.basis, found.revisit)
    p.record("inline", 2 * MS * 4, 2 * MS * 4, 4)
    p.calls = 2
    assert not p.drifted()  # 4 ms so far
    p.calls = math.ceil(found.revisit * found.basis / (2 * MS))
    assert p.drifted() and p.exploring and p.solo == pytest.approx((2 * MS, 2 * MS))


def test_estimates_follow_the_model():
    p = profile(**HELD, **CHEAP_TRIP)
    found = estimates(p, Machine(2))
    assert found["inline"].seconds == 10 * MS
    # The GIL held: threads compute one at a time, plus their own work per call.
    assert found["thread"].seconds == pytest.approx(10 * MS + THREAD_CALL_S)
    assert found["process"].seconds == pytest.approx((10 + 0.5 - 0.1) * MS / 2 + 0.1 * MS)
    # Before any probe: each lane at its best.
    fresh = estimates(profile(**COMPUTING, arg_bytes=4 << 20), Machine(2))
    assert fresh["thread"].bound == pytest.approx(5 * MS + THREAD_CALL_S)
    assert fresh["process"].seconds == float("inf")
    assert fresh["process"].bound == pytest.approx(max(5 * MS, (4 << 20) * SHIP_BYTE_S))
    # Released, processes run it no better than threads, which ship nothing.
    released = estimates(profile(**COMPUTING, parallel_seen=1.8, speedup_seen=1.6),
                         Machine(2))
    assert released["process"].bound >= released["thread"].seconds


def test_a_slower_machine_ships_fewer_bytes_to_processes():
    p = profile(**HELD, arg_bytes=4 << 20)  # 4 MiB a call of 10 ms: 5.5 ms to ship here
    assert choose(p, Machine(2)) == "process"
    slow = Machine(2).scaled({"ship_shared_byte": 2 * REFERENCE_SHIP_BYTE_S})
    assert slow.ship_byte_s == pytest.approx(2 * SHIP_BYTE_S)
    assert choose(p, slow).lane == "inline"


def test_machine_scaling_is_bounded_and_restores_only_sound_records():
    wild = Machine(2).scaled({"thread_start": 1.0, "handoff": 1e-12, "ship_shared_byte": -1.0})
    assert wild.calibrated
    assert wild.thread_start_s == pytest.approx(4 * THREAD_START_S)
    assert wild.thread_call_s == pytest.approx(THREAD_CALL_S / 4)
    assert wild.ship_byte_s == SHIP_BYTE_S  # a reading that makes no sense: unscaled
    base = Machine(2)
    for junk in (None, {}, {"timings": "x"}, {"timings": {"handoff": "nan"}, "process_trip": 1},
                 {"timings": {"handoff": 0.0}, "process_trip": 1e-5}, [1, 2]):
        assert base.restore(junk) == base, junk
    record = base.saw_trip(12e-6).to_record({"handoff": 36e-6})
    again = base.restore(record)
    assert again.calibrated and again.process_trip_s == 12e-6
    assert again.thread_call_s == pytest.approx(2 * THREAD_CALL_S)
    assert base.saw_trip(1.0).process_trip_s == PROCESS_TRIP_S  # only a cheaper one counts


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
    assert (spread_gain(wall, cpu, calls, threads, cores, shipped * SHIP_BYTE_S) > 0.02) is gains


def test_a_stored_decision_keeps_what_the_gil_probes_and_pairs_found():
    # Restored without it, a function that releases the GIL looked held back by it: its
    # threads' estimate fell to one call at a time, and its calls were spread over the
    # workers as waits are.
    import json

    p = profile(solo=(2.6 * MS, 2.6 * MS), gil_released=4, pair_tries=1, pairs_contended=1)
    found = choose(p, Machine(2))
    assert isinstance(found, Decision) and found.lane == "thread", found
    p.decide(found.lane, found.reason, found.basis)
    again = Profile("f", 0, False)
    assert again.restore(json.loads(json.dumps(p.to_record())), ("inline", "thread"))
    assert (again.gil, again.parallel) == (p.gil, p.parallel) == ("released", False)
    assert estimates(again, Machine(2)) == estimates(p, Machine(2))
    older = {key: value for key, value in p.to_record().items() if key not in ("gil", "pairs")}
    assert again.restore(older, ("thread",)) and again.gil is None  # stored before: none
    for junk in ({"gil": [1, "x", 0]}, {"pairs": [0, 0, 0, -1.0, 0]}, {"gil": [1, 2]}):
        assert not Profile("f", 0, False).restore({**p.to_record(), **junk}, ("thread",))


def test_what_pickling_a_call_takes_counts_when_it_is_more_than_its_bytes():
    # A NumPy array of 3.6 KB took 11 µs to pickle here, 4.7 µs by the byte: 20,000 of
    # them sent to process chunks took 0.3 s where a loop took 0.04 s.
    from multilane.auto._profile import pickling_time
    from multilane.auto._verdict import chunks_pay, shipping

    work, shipped = 5e-6, 3616
    p = profile(solo=(work, work), result_bytes=shipped)
    assert shipping(p, Machine(2)) == pytest.approx(shipped * SHIP_BYTE_S)
    assert chunks_pay(work, shipping(p, Machine(2)), 2)  # by the bytes alone: chunks
    p.result_pickle_s = 11e-6
    assert shipping(p, Machine(2)) == pytest.approx(11e-6)
    assert not chunks_pay(work, shipping(p, Machine(2)), 2)  # as pickling it took: here
    assert pickling_time(1, 2.5, None) == 0.0  # numbers: nothing worth timing
    assert pickling_time(b"x" * 4096, {"a": list(range(100))}) > 0
    import threading

    assert pickling_time(threading.Lock()) == 0.0  # cannot be pickled: never shipped


def test_chunks_must_gain_what_any_lane_must_to_replace_a_simpler_one():
    from multilane.auto._verdict import chunk_gain, chunks_pay

    # 70 ms calls with 70 MiB arguments, shipping estimated 1 ms under their work (a
    # calibration that timed a MiB in cache): no chunks.
    work, shipped_s = 70 * MS, 69 * MS
    assert chunk_gain(work, shipped_s, 2) > 0
    assert not chunks_pay(work, shipped_s, 2)
    assert chunks_pay(work, 30 * MS, 2)  # their work shared by two cores: chunks


# The cluster (issue 17): weighed only once the executor has joined one (cluster_slots).
JOINED = {"cluster_slots": 32}
KNOWN_CLUSTER = {**JOINED, "cluster_trip_s": 3 * MS}
CLUSTER_ROWS = [
    # (name, evidence, machine, choice: a lane, or the probe wanted)
    ("no cluster joined: the process lane", {**HELD, **CHEAP_TRIP}, {}, "process"),
    ("a cluster of 32 slots could run 10 ms calls 16x faster: probe it",
     {**HELD, **CHEAP_TRIP}, JOINED, "cluster"),
    ("probed: 10 ms and 3 ms of trip on 32 slots beat 5 ms on 2 processes",
     {**HELD, **CHEAP_TRIP, "cluster_work": 10 * MS}, KNOWN_CLUSTER, "cluster"),
    ("probed, but its machines are slow: 200 ms a call there loses",
     {**HELD, **CHEAP_TRIP, "cluster_work": 200 * MS}, KNOWN_CLUSTER, "process"),
    ("a 0.1 ms call gains nothing a 3 ms trip does not eat: not even probed",
     {"solo": (0.1 * MS, 0.1 * MS), "gil_held": 2, "transport_seen": 0.02 * MS,
      "sending_seen": 0.01 * MS, "process_work": 0.1 * MS, "process_probes": 1},
     KNOWN_CLUSTER, "process"),
    ("as many slots as cores: the cluster's bound is the process lane's, no probe",
     {**HELD, **CHEAP_TRIP}, {"cluster_slots": 2}, "process"),
    ("100 MB a call at 1 GB/s outweighs its 10 ms of work anywhere: not probed",
     {**HELD, **CHEAP_TRIP, "arg_bytes": 100 << 20}, JOINED, None),
]


@pytest.mark.parametrize(("name", "evidence", "machine", "expected"), CLUSTER_ROWS,
                         ids=[row[0] for row in CLUSTER_ROWS])
def test_the_cluster_is_probed_and_chosen_only_when_it_could_pay(name, evidence, machine,
                                                                 expected):
    found = choose(profile(**evidence), Machine(2)._replace(**machine), calls=100)
    if expected is None:  # not the cluster, whatever the local lanes make of the rest
        assert found != "cluster" and getattr(found, "lane", None) != "cluster"
    elif expected == "cluster" and "cluster_work" not in evidence:
        assert found == "cluster"  # the probe
    else:
        assert isinstance(found, Decision) and found.lane == expected, found
        if expected == "cluster":
            assert "cluster's 32 slots" in found.reason


def test_a_cluster_probe_must_fit_the_exploration_budget():
    # Four calls of 10 ms: a probe of ~3 ms costs more than 5% of their time (and as many
    # again): the decision waits, and says when the probe would fit.
    p = profile(**HELD, **CHEAP_TRIP)
    found = choose(p, Machine(2, cluster_slots=32), calls=4)
    assert isinstance(found, Decision) and found.lane == "process" and found.revisit == 8
    assert choose(p, Machine(2, cluster_slots=32), calls=8) == "cluster"


def test_the_cluster_estimate_counts_work_trip_slots_and_bytes():
    p = profile(**HELD, **CHEAP_TRIP, cluster_work=12 * MS, arg_bytes=1 << 20)
    found = estimates(p, Machine(2, cluster_slots=8, cluster_trip_s=4 * MS))
    sending = (1 << 20) * 1e-9
    assert found["cluster"].seconds == pytest.approx((12 + 4) * MS / 8 + sending)
    # Before the probe: no cheaper a trip than to a process here
    assert found["cluster"].bound == pytest.approx(12.5 * MS / 8 + sending)
    before = estimates(profile(**HELD, **CHEAP_TRIP), Machine(2, cluster_slots=8))
    assert math.isinf(before["cluster"].seconds)
    assert before["cluster"].bound == pytest.approx(10.5 * MS / 8)
    assert "cluster" not in estimates(p, Machine(2))
