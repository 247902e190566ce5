"""The multilane command: showdown's figures, help, and argument errors."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import TIMEOUT


def _multilane(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "multilane", *args], capture_output=True,
                          text=True, timeout=TIMEOUT)


def test_showdown_reports_every_lane():
    out = _multilane("showdown", "--n", "20000", "--tasks", "2", "--repeat", "1", "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["n"] == 20000 and figures["tasks"] == 2
    assert set(figures["lanes"]) == {"sequential", "threads", "multiprocessing", "multilane",
                                     "ceiling"}
    for lane in figures["lanes"].values():
        assert lane["seconds"] > 0 and lane["speedup"] > 0
    assert figures["lanes"]["sequential"]["speedup"] == 1.0


def test_showdown_table():
    out = _multilane("showdown", "--n", "20000", "--tasks", "2", "--repeat", "1")
    assert out.returncode == 0, out.stderr
    assert "lane" in out.stdout and "speedup" in out.stdout
    for lane in ("sequential", "threads", "multiprocessing", "multilane", "ceiling"):
        assert out.stdout.count(lane) >= 2  # a table row and a bar


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
