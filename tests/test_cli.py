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
