"""Profiles that last: what the auto lane learned of a function in one run decides its
calls in the next (same code, same machine), and the store never fails a call."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import _tasks
import pytest
from conftest import TIMEOUT

import multilane

SCRIPT = textwrap.dedent("""
    import json, sys, time
    import multilane

    def wait(seconds):
        time.sleep(seconds)
        return seconds

    def add(x):
        return x + OFFSET

    OFFSET = 1
    with multilane.Executor(processes=2) as ex:
        assert list(ex.map(wait, [0.005] * 20)) == [0.005] * 20
        assert list(ex.map(add, range(200))) == list(range(1, 201))
        found = {f.__name__: ex.explain(f).profiles[0] for f in (wait, add)}
    print(json.dumps({name: [p["lane"], p["verdict"]] for name, p in found.items()}))
""")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The store on, in a directory of this test's own."""
    monkeypatch.setenv("MULTILANE_PROFILES", "on")
    monkeypatch.setenv("MULTILANE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _run(script_path, env=None) -> dict:
    done = subprocess.run([sys.executable, str(script_path)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_second_run_starts_decided(cache, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    first = _run(script)
    assert not any("earlier run" in verdict for _, verdict in first.values()), first
    second = _run(script)
    for name, (lane, verdict) in second.items():
        assert "learned in an earlier run" in verdict, second
        assert lane == first[name][0]
    assert any(cache.iterdir())


def test_a_change_to_the_code_starts_afresh(cache, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    _run(script)
    script.write_text(SCRIPT.replace("return x + OFFSET", "return OFFSET + x"))
    second = _run(script)
    assert "earlier run" not in second["add"][1]  # its code changed
    assert "learned in an earlier run" in second["wait"][1]  # its did not


WAITS = textwrap.dedent("""
    import json, time
    import multilane

    def wait(seconds):
        time.sleep(seconds)
        return seconds

    with multilane.Executor(processes=2) as ex:
        first = ex.submit(wait, 0.001)  # shorter than EARLY_S: decided once it ends
        at_first = ex.statistics()["thread"].max_threads  # threads allowed at once, by then
        rest = [ex.submit(wait, 0.001) for _ in range(199)]
        assert [f.result() for f in [first, *rest]] == [0.001] * 200
        (profile,) = ex.explain(wait).profiles
    print(json.dumps({"at_first": at_first, "concurrency": profile["concurrency"],
                      "lane": profile["lane"]}))
""")


def test_a_second_run_runs_as_many_waits_at_once_from_its_first_call(cache, tmp_path):
    # Decided from the store, each call goes straight to the threads: no backlog to size
    # their number by, so the store keeps how many ran at once (it once kept 0, and the
    # next run ran 662 waits on the lane's default threads, twice as long).
    script = tmp_path / "waits.py"
    script.write_text(WAITS)
    first = _run(script)  # its at_first: the lane's default, nothing decided yet
    if first["lane"] != "thread" or first["concurrency"] <= first["at_first"]:
        pytest.skip(f"the first run did not widen the threads: {first}")  # a busy machine
    second = _run(script)
    assert second["at_first"] >= first["concurrency"], (first, second)


@pytest.mark.parametrize("how", ["environment", "argument"])
def test_the_store_can_be_turned_off(cache, tmp_path, monkeypatch, how):
    script = tmp_path / "job.py"
    if how == "environment":
        monkeypatch.setenv("MULTILANE_PROFILES", "off")
        script.write_text(SCRIPT)
    else:
        script.write_text(SCRIPT.replace("Executor(processes=2)",
                                         "Executor(processes=2, profiles=False)"))
    _run(script)
    second = _run(script)
    assert not any("earlier run" in verdict for _, verdict in second.values())
    assert not cache.exists()


def test_a_path_of_its_own(no_leaks, cache, tmp_path):
    path = tmp_path / "mine.sqlite3"
    for _ in range(2):
        with multilane.Executor(processes=2, profiles=path) as ex:
            assert list(ex.map(len, ["ab"] * 50)) == [2] * 50
            (profile,) = ex.explain(len).profiles
    assert "learned in an earlier run" in profile["verdict"]
    assert path.exists()


def test_bad_profiles_argument_is_refused():
    with pytest.raises(TypeError, match="profiles must be True, False or a path"):
        multilane.Executor(profiles=3)


def test_a_corrupt_store_never_fails_a_call(cache, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    cache.mkdir()
    (cache / "profiles-v1.sqlite3").write_bytes(b"not a database" * 100)
    _run(script)
    assert _run(script)  # and again, whatever the first run did with the file


def test_many_runs_at_once_share_the_store(cache, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    runs = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for run in runs:
        out, err = run.communicate(timeout=TIMEOUT)
        assert run.returncode == 0, err
        assert set(json.loads(out.splitlines()[-1])) == {"wait", "add"}
    assert "learned in an earlier run" in _run(script)["wait"][1]


def test_forget_forgets_the_stored_profile_too(no_leaks, cache, tmp_path):
    path = tmp_path / "mine.sqlite3"
    with multilane.Executor(processes=2, profiles=path) as ex:
        list(ex.map(len, ["ab"] * 50))
        ex.forget(len)
    with multilane.Executor(processes=2, profiles=path) as ex:
        list(ex.map(len, ["ab"] * 50))
        (profile,) = ex.explain(len).profiles
    assert "earlier run" not in profile["verdict"]


def test_a_stored_decision_that_no_longer_fits_is_explored_again(no_leaks, cache, tmp_path):
    import _tasks

    path = tmp_path / "mine.sqlite3"
    with multilane.Executor(processes=2, profiles=path) as ex:
        list(ex.map(_tasks.python_work, [10] * 200))  # tiny: inline
        assert ex.explain(_tasks.python_work).profiles[0]["lane"] == "inline"
    with multilane.Executor(processes=2, profiles=path) as ex:
        # Now each call computes for ~10 ms: 1000x the basis of the stored decision.
        list(ex.map(_tasks.python_work, [200_000] * 24))
        (profile,) = ex.explain(_tasks.python_work).profiles
    assert "earlier run" not in profile["verdict"], profile


def test_the_store_is_kept_outside_the_project(cache):
    # The default location when nothing is set is the user's cache directory.
    env = {k: v for k, v in os.environ.items() if k not in ("MULTILANE_CACHE_DIR",
                                                            "XDG_CACHE_HOME")}
    code = "from multilane.auto._store import default_path; print(default_path())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=TIMEOUT, check=True).stdout.strip()
    assert out == os.path.join(os.path.expanduser("~"), ".cache", "multilane",
                               "profiles-v1.sqlite3")


def test_importing_multilane_reads_no_store(cache):
    # sqlite3's import alone costs ~6 ms: a program pays it only once a store is read.
    code = ("import sys, multilane; print('sqlite3' in sys.modules); "
            "multilane.Executor(profiles=False).shutdown(); print('sqlite3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout.split()
    assert out == ["False", "False"]


def test_the_machine_is_calibrated_once_and_kept(no_leaks, cache, tmp_path):
    """The first executor to shut down with the store on times this machine's primitives
    (``_machine.calibrate``) and stores them; the next starts with them."""
    path = tmp_path / "profiles.sqlite"
    with multilane.Executor(processes=2, profiles=path) as ex:
        list(ex.map(_tasks.countdown, [20_000] * 8))
        assert not ex.explain(_tasks.countdown).machine["calibrated"]
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT record FROM profiles WHERE function = '<machine>'").fetchall()
    finally:
        conn.close()
    (record,) = [json.loads(text) for (text,) in rows]
    assert set(record["timings"]) == {"thread_start", "handoff", "ship_shared_byte",
                                       "pickle_call"}
    assert all(v > 0 for v in record["timings"].values())
    with multilane.Executor(processes=2, profiles=path) as ex:
        list(ex.map(_tasks.countdown, [20_000] * 8))
        explained = ex.explain(_tasks.countdown)
    assert explained.machine["calibrated"], explained.machine
    assert "this machine (calibrated)" in str(explained)
