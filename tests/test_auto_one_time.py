"""The auto lane and one-time costs: a worker's loading of a function (importing a slow
module, rebuilding a closure by value) is measured apart from the transport, paid while
the calls waiting for a decision run here, and a function no worker can take never fails
a call."""

from __future__ import annotations

import importlib
import os
import textwrap
import threading

import pytest
from conftest import TIMEOUT, wait_until

import multilane

SLOW_IMPORT_S = 1.5  # the module's import sleeps this long: the worker's one-time set-up


def _module(tmp_path, monkeypatch, name: str, import_s: float) -> object:
    """A real module in ``tmp_path`` whose import takes ``import_s`` seconds (a table
    built at import, a heavy dependency: any real module's start-up), with a function that
    computes about a millisecond holding the GIL and says which process ran it."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        import os
        import time

        time.sleep({import_s})

        def where(n):
            total = 0
            for i in range(n):
                total += i * i
            return os.getpid()

        def tiny_where(_):
            sum(range(100))  # about a microsecond: 20,000 calls are worth process chunks
            return os.getpid()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


@pytest.fixture
def ex(no_leaks):
    with multilane.Executor(processes=2, threads=8) as executor:
        yield executor


def _setup_seen(ex, fn) -> float:
    (profile,) = ex.explain(fn).profiles
    return profile["setup_s"]


def test_a_map_runs_here_while_the_workers_load_a_slow_module(ex, tmp_path, monkeypatch):
    slow = _module(tmp_path, monkeypatch, "slow_import_map", SLOW_IMPORT_S)
    # 40 calls of ~1 ms take far less than the workers' 1.5 s import: none waits for it.
    assert set(ex.map(slow.where, [20_000] * 40)) == {os.getpid()}
    setup = wait_until(lambda: _setup_seen(ex, slow.where), message="the warm-up never ended")
    assert setup >= 0.9 * SLOW_IMPORT_S
    assert "one-time set-up in a worker" in str(ex.explain(slow.where))


def test_a_map_worth_chunks_runs_here_until_the_workers_have_loaded(ex, tmp_path,
                                                                   monkeypatch):
    """Decided inline, a map of tiny calls worth process chunks runs here until the workers
    have the function: 20,000 calls of a microsecond went to workers importing a module
    for 0.3 s, and the caller waited for them (0.5 s against 14 ms in a loop)."""
    slow = _module(tmp_path, monkeypatch, "slow_import_tiny", SLOW_IMPORT_S)
    # Started after the module's directory is on sys.path: the workers can import it.
    ex.options(lane="process").submit(abs, -1).result(TIMEOUT)  # only the import is slow
    assert set(ex.map(slow.tiny_where, range(20_000))) == {os.getpid()}
    wait_until(lambda: _setup_seen(ex, slow.tiny_where), message="the workers never loaded it")
    # Loaded now: such a map goes to the workers in chunks (once decided: on a loaded
    # machine a first call can look slow, and the first map end before the decision).
    for _ in range(5):
        pids = set(ex.map(slow.tiny_where, range(20_000)))
        if os.getpid() not in pids:
            break
    assert os.getpid() not in pids, str(ex.explain(slow.tiny_where))


def test_submitted_calls_run_on_a_thread_while_the_workers_load(ex, tmp_path, monkeypatch):
    slow = _module(tmp_path, monkeypatch, "slow_import_submit", SLOW_IMPORT_S)
    futures = [ex.submit(slow.where, 20_000) for _ in range(40)]
    assert {f.result() for f in futures} == {os.getpid()}


def test_calls_submitted_while_the_workers_load_go_where_the_model_says(ex, tmp_path,
                                                                       monkeypatch):
    """While the workers load a computing function, a call submitted runs where the model
    would send it now (inline: in the submitting thread, as a decided call would), not in
    a backlog that a thread runs by turns with the submitter (4,600 NumPy sums of 20 µs
    took 90 µs each that way)."""
    slow = _module(tmp_path, monkeypatch, "slow_import_guess", SLOW_IMPORT_S)
    ex.options(lane="process").submit(abs, -1).result(TIMEOUT)  # only the import is slow
    here = threading.get_ident()

    def where_and_thread(n):
        return slow.where(n), threading.get_ident()

    # One at a time, 100 calls of ~1 ms, well within the workers' 1.5 s import (the
    # warm-up starts once the calls so far pay for it, see EXPLORE_BUDGET and SETUP_S).
    ran = [ex.submit(where_and_thread, 20_000).result(TIMEOUT) for _ in range(100)]
    assert {pid for pid, _ in ran} == {os.getpid()}
    in_caller = sum(thread == here for _, thread in ran)
    assert in_caller >= 80, (in_caller, str(ex.explain(where_and_thread)))


def test_set_up_is_never_counted_as_transport(ex, tmp_path, monkeypatch):
    slow = _module(tmp_path, monkeypatch, "slow_import_transport", SLOW_IMPORT_S)
    # Enough calls that the map outlasts the warm-up, so the process probe runs.
    list(ex.map(slow.where, [20_000] * 4000))
    (profile,) = wait_until(lambda: [p for p in ex.explain(slow.where).profiles
                                     if p["transport_s"] is not None],
                            message="no process probe measured a transport")
    assert profile["setup_s"] >= 0.9 * SLOW_IMPORT_S
    assert profile["transport_s"] < SLOW_IMPORT_S / 2  # the steady round trip only


def _auto_lane_imported(_: object) -> bool:
    import sys

    return "multilane.auto._lane" in sys.modules


def test_a_worker_runs_the_probes_without_importing_the_auto_lane(ex):
    # Importing the whole lane cost each worker about 45 ms at its first probe, which the
    # probe read as its round trip.
    from multilane.auto._remote import load_probe
    from multilane.buffers._serialize import dumps_function

    process = ex.options(lane="process")
    pickled = dumps_function(_auto_lane_imported)
    assert all(s >= 0 for s in process.map(load_probe, [pickled] * 8, timeout=TIMEOUT))
    assert not any(process.map(_auto_lane_imported, range(8), timeout=TIMEOUT))


def test_an_unpicklable_function_never_fails_a_call(ex):
    lock = threading.Lock()

    def holds_a_lock(n):  # a closure over a lock: cloudpickle cannot send it
        total = 0
        with lock:
            for i in range(n):
                total += i
        return total

    expected = sum(range(20_000))
    assert [f.result() for f in [ex.submit(holds_a_lock, 20_000) for _ in range(30)]] == [
        expected] * 30
    assert list(ex.map(holds_a_lock, [20_000] * 30)) == [expected] * 30
    (profile,) = ex.explain(holds_a_lock).profiles
    assert profile["lane"] != "process"


def test_unpicklable_arguments_never_fail_a_call(ex, tmp_path, monkeypatch):
    slow = _module(tmp_path, monkeypatch, "quick_import_args", 0.0)

    def spins(n, lock):
        with lock:
            return slow.where(n)

    lock = threading.Lock()
    futures = [ex.submit(spins, 20_000, lock) for _ in range(30)]
    assert {f.result() for f in futures} == {os.getpid()}


def test_a_function_no_worker_can_load_runs_here(ex, tmp_path, monkeypatch):
    # The workers start before the module's directory is on sys.path: they cannot import it.
    ex.options(lane="process").submit(abs, -1).result()
    lost = _module(tmp_path, monkeypatch, "not_in_the_workers", 0.0)
    assert set(ex.map(lost.where, [20_000] * 40)) == {os.getpid()}
    futures = [ex.submit(lost.where, 20_000) for _ in range(40)]
    assert {f.result() for f in futures} == {os.getpid()}
    profile = wait_until(lambda: [p for p in ex.explain(lost.where).profiles
                                  if not p["verdict"].startswith("exploring")],
                         message="never decided")[0]
    assert profile["lane"] != "process"
    assert "a worker cannot load it" in profile["verdict"]


def test_calls_submitted_after_the_backlog_ran_dry_do_not_wait_for_the_workers(
        ex, tmp_path, monkeypatch):
    """While the workers load the function, a thread runs the calls waiting for the
    decision; once it has run them all it stops, and calls submitted later must start it
    again rather than wait for the workers (20,000 submits of a microsecond waited 1.1 s
    for a worker's import so)."""
    gate = tmp_path / "gate"
    (tmp_path / "gated_import.py").write_text(textwrap.dedent(f"""
        import os
        import time

        if os.environ.get("GATED_IMPORT_PARENT") != str(os.getpid()):
            # In a worker: the import ends when the test opens the gate (or in 60 s).
            deadline = time.monotonic() + 60
            while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:
                time.sleep(0.005)

        def where(n):
            total = 0
            for i in range(n):
                total += i * i
            return os.getpid()
    """))
    monkeypatch.setenv("GATED_IMPORT_PARENT", str(os.getpid()))
    monkeypatch.syspath_prepend(str(tmp_path))
    gated = importlib.import_module("gated_import")
    try:
        first = [ex.submit(gated.where, 20_000) for _ in range(20)]
        assert {f.result(TIMEOUT) for f in first} == {os.getpid()}
        (profile,) = ex.explain(gated.where).profiles
        if profile["lane"] is None:  # still waiting for the workers: the case at hand
            later = [ex.submit(gated.where, 20_000) for _ in range(20)]
            assert {f.result(TIMEOUT) for f in later} == {os.getpid()}
            assert not gate.exists()  # they did not wait for the workers
    finally:
        gate.write_text("open")

