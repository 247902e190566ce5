"""The multilane command: showdown's figures, help, and argument errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from conftest import TIMEOUT


def _multilane(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "multilane", *args], capture_output=True,
                          text=True, timeout=TIMEOUT)


CONTENDERS = {"sequential", "threads", "processes", "asyncio", "multilane"}
TINY = ("--quick", "--scale", "0.1", "--n", "20000", "--tasks", "2")  # seconds, not minutes


def test_showdown_runs_every_experiment_with_every_contender():
    out = _multilane("showdown", *TINY, "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert list(figures["experiments"]) == ["computing", "waiting", "many", "mixed"]
    assert figures["sizes"]["countdown"] == 20000 and figures["sizes"]["tasks"] == 2
    for key, experiment in figures["experiments"].items():
        rows = experiment["rows"]
        assert set(rows) == CONTENDERS, key
        assert rows["sequential"]["speedup"] == 1.0
        for name, row in rows.items():
            assert row["why"], (key, name)  # a sentence for every row
            if key == "computing" and name == "asyncio":
                assert "seconds" not in row and "does not apply" in row["why"]
                continue
            assert row["seconds"] > 0 and row["speedup"] > 0, (key, name)
        # The auto lane's row says what it decided, from what it measured.
        decided = {d["function"]: d["lane"] for d in rows["multilane"]["auto"]}
        assert decided, key
        assert all(lane in ("inline", "thread", "process", "async", None)
                   for lane in decided.values()), decided
    # Calls that only wait go to threads; coroutine functions to the event loop.
    assert figures["experiments"]["waiting"]["rows"]["multilane"]["auto"][0]["lane"] == "thread"
    assert "to threads" in figures["experiments"]["waiting"]["rows"]["multilane"]["why"]
    assert figures["experiments"]["many"]["rows"]["multilane"]["auto"][0]["lane"] == "async"
    functions = [d["function"] for d in
                 figures["experiments"]["mixed"]["rows"]["multilane"]["auto"]]
    assert functions == ["fetch", "score"]


def test_showdown_table_has_a_bar_and_a_sentence_per_row():
    out = _multilane("showdown", *TINY, "--only", "computing,waiting", "--repeat", "1")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "1. Computing:" in text and "2. Waiting:" in text and "Mixed" not in text
    for name in CONTENDERS:
        assert text.count(f"   {name} ") == 2, name  # one row per experiment
    assert text.count("<- fastest") == 2
    assert "does not apply" in text and "auto sent fetch to threads" in text
    assert "Shorter bars are faster" in text


def test_showdown_plot_writes_a_chart(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot is an optional extra (multilane[plot])")
    chart = tmp_path / "showdown.png"
    out = _multilane("showdown", *TINY, "--only", "computing", "--plot", str(chart))
    assert out.returncode == 0, out.stderr
    assert chart.read_bytes().startswith(b"\x89PNG") and chart.stat().st_size > 10_000
    assert f"plot written to {chart}" in out.stdout


def test_showdown_plot_without_matplotlib_says_so_before_measuring(tmp_path):
    if importlib.util.find_spec("matplotlib") is not None:
        # Hide it: a directory first on the path whose "matplotlib" cannot be imported.
        (tmp_path / "matplotlib").mkdir()
        (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('hidden')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "multilane", "showdown", "--plot",
                          str(tmp_path / "x.png")], capture_output=True, text=True,
                         timeout=TIMEOUT, env=env)
    assert out.returncode == 2
    assert "--plot needs matplotlib: pip install 'multilane[plot]'" in out.stderr
    assert out.stdout == ""  # nothing measured
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args, words", [
    (("--only", "nope"), "unknown experiment 'nope': expected some of computing, waiting"),
    (("--scale", "0"), "expected a positive number, got '0'"),
    (("--tasks", "zero"), "expected a positive whole number, got 'zero'"),
])
def test_showdown_bad_arguments_are_clear_usage_errors(args, words):
    out = _multilane("showdown", *args)
    assert out.returncode == 2 and words in out.stderr, out.stderr


def _timing(seconds, **details):
    from multilane.cli._experiments import Timing

    return Timing(seconds, 1.0, details)


def test_each_sentence_follows_what_was_measured(monkeypatch):
    from multilane.cli import _experiments as e

    auto = {"function": "countdown", "lane": "process", "verdict": "computing with the GIL "
            "held (the watcher waited 5 ms for it)", "calls": 4, "wall": 0.2, "cpu": 0.2,
            "at_once": 0, "spread": 0, "lanes": {}}
    timings = {"sequential": _timing(1.0), "threads": _timing(1.0),
               "processes": _timing(0.5, workers=2), "multilane": _timing(0.6, auto=[auto])}
    why = e.explain_computing(timings)
    assert why["threads"] == ("the GIL lets one thread count at a time: no faster than "
                              "sequential")
    assert why["processes"].startswith("2 processes") and "2.0x" in why["processes"]
    assert why["multilane"] == ("auto sent countdown to worker processes (200.0 ms of CPU in "
                                "200.0 ms a call: computing with the GIL held)")
    # Threads faster with the GIL on: noise, and said to be.
    timings["threads"] = _timing(0.8)
    assert e.explain_computing(timings)["threads"].endswith(
        "(the difference is the machine's noise)")
    monkeypatch.setattr(e, "gil_enabled", lambda: False)  # a free-threaded CPython
    assert "no GIL" in e.explain_computing(timings)["threads"]
    waiting = {**auto, "function": "fetch", "lane": "thread", "verdict": "mostly waiting",
               "wall": 0.02, "cpu": 0.0005, "at_once": 40}
    timings["multilane"] = _timing(0.1, auto=[waiting])
    assert "auto sent fetch to threads, 40 at once (0.5 ms of CPU in 20.0 ms a call: " \
           "mostly waiting)" == e.explain_waiting(timings)["multilane"]


def test_help():
    out = _multilane("--help")
    assert out.returncode == 0 and "showdown" in out.stdout


def test_bad_argument_is_a_clear_usage_error():
    out = _multilane("showdown", "--tasks", "zero")
    assert out.returncode == 2
    assert "expected a positive whole number, got 'zero'" in out.stderr


def _tasks_file(function: str) -> str:
    import os

    return os.path.join(os.path.dirname(__file__), "_tasks.py") + ":" + function


def test_advise_times_every_lane_and_shows_the_auto_verdict():
    out = _multilane("advise", _tasks_file("python_work"), "20000", "--calls", "10")
    assert out.returncode == 0, out.stderr
    for lane in ("inline", "thread", "process", "auto"):
        assert f"\n{lane} " in out.stdout
    assert "Recommendation: lane=" in out.stdout and "auto lane: _tasks.python_work()" in out.stdout


def test_advise_a_coroutine_function_and_literal_arguments():
    out = _multilane("advise", _tasks_file("double_async"), "21", "--calls", "5")
    assert out.returncode == 0, out.stderr
    assert "async" in out.stdout and "-> async" in out.stdout


def test_advise_says_what_is_wrong():
    out = _multilane("advise", "no_such_module:f")
    assert out.returncode == 2 and "cannot import no_such_module" in out.stderr
    out = _multilane("advise", "json")
    assert out.returncode == 2 and "expected module:function" in out.stderr
    out = _multilane("advise", _tasks_file("raise_value_error"), "'boom'", "--calls", "2")
    assert out.returncode == 1 and "raised ValueError: boom" in out.stderr
