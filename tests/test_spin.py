"""A waiting caller spins or sleeps, whichever has been faster lately: the choice, driven
by recorded wait times (no timing), and a pool whose callers keep getting their results
either way."""

from __future__ import annotations

import _tasks
import pytest
from conftest import TIMEOUT

import multilane
from multilane.lanes.process._spin import EXPLORE_EVERY, KEPT, MARGIN, HelpSpin

US = 1e-6


def _choices(spin: HelpSpin, waits: int, spin_s: float, sleep_s: float) -> list[bool]:
    """``waits`` waits taking ``spin_s`` spinning and ``sleep_s`` sleeping; each one's
    choice."""
    out = []
    for _ in range(waits):
        spun = spin.spin_now()
        spin.waited(spun, spin_s if spun else sleep_s)
        out.append(spun)
    return out


def test_waits_spin_until_sleeping_has_been_timed_then_explore_it():
    spin = HelpSpin()
    choices = _choices(spin, EXPLORE_EVERY, 20 * US, 150 * US)
    assert all(choices[:-1]) and not choices[-1]  # the last one tried sleeping
    assert spin.medians == (20 * US, 150 * US) and spin.prefers_spinning()


def test_a_busy_machine_turns_waits_to_sleep_and_a_quiet_one_back_to_spinning():
    spin = HelpSpin()
    # Idle: spinning's 20 µs beat sleeping's 150 µs; one wait in EXPLORE_EVERY sleeps.
    idle = _choices(spin, 4 * EXPLORE_EVERY, 20 * US, 150 * US)
    assert idle.count(False) == 4
    # A neighbour takes a core: spinning is now in the worker's way (190 µs), sleeping
    # costs 60 µs. Sleeping wins within a few waits, and stays.
    busy = _choices(spin, 4 * EXPLORE_EVERY, 190 * US, 60 * US)
    assert not spin.prefers_spinning()
    assert busy[-EXPLORE_EVERY:].count(True) == 1  # spinning is only explored
    # The neighbour leaves: spinning wins back once most of its last KEPT tries were
    # fast (three tries of it, one every EXPLORE_EVERY waits).
    quiet = _choices(spin, (KEPT // 2 + 2) * EXPLORE_EVERY, 20 * US, 150 * US)
    assert spin.prefers_spinning() and quiet[-EXPLORE_EVERY:].count(False) == 1


def test_a_tie_sleeps():
    # Calls longer than a spin: both ways wait about as long, and sleeping spends no CPU.
    spin = HelpSpin()
    _choices(spin, 2 * EXPLORE_EVERY, 1000 * US, 1000 * US * (1 - MARGIN / 2))
    assert not spin.prefers_spinning()


@pytest.fixture
def pool(no_leaks):
    with multilane.ProcessPoolExecutor(2) as executor:
        yield executor


def test_results_come_back_whichever_way_the_callers_wait(pool):
    for prefer_sleep in (False, True):
        if prefer_sleep:
            for _ in range(KEPT):  # spinning looks slow: waits sleep now
                pool._spin.waited(True, 1.0)
                pool._spin.waited(False, 1e-6)
            assert not pool._spin.prefers_spinning()
        assert [pool.submit(_tasks.square, i).result(TIMEOUT) for i in range(50)] == [
            i * i for i in range(50)]
        assert [pool.submit(_tasks.square, i).result() for i in range(50)] == [
            i * i for i in range(50)]
    spun, slept = pool._spin.medians
    assert spun is not None and slept is not None


def test_a_pool_made_anew_spins_first(pool):
    assert pool._spin.prefers_spinning()
    assert pool.submit(_tasks.square, 3).result() == 9
