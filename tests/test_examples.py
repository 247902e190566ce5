"""The examples run as a user would run them, and say what they promise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import TIMEOUT

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _run(example: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, example)],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    return out


def test_drop_in_example():
    out = _run("drop_in.py")
    assert "lambda: 42" in out.stdout
    assert "crashed as expected:" in out.stdout and "was killed by SIGKILL" in out.stdout
    assert "the other tasks: [0, 1, 4, 9, 16, 25, 36, 49]" in out.stdout


@pytest.mark.heavy  # a whole program, seconds long: run on the main interpreter
def test_lanes_example():
    out = _run("lanes.py")
    assert "thread lane: 40 pages" in out.stdout
    assert "process lane: top words [('lane', 40)]" in out.stdout
    assert "async lane: 5 pages from a coroutine" in out.stdout
    assert "hybrid lane: 40 pages downloaded and counted" in out.stdout
    assert "lanes started: thread, process, async, hybrid" in out.stdout
    assert "@multilane.task: status 200, plain call 200" in out.stdout


@pytest.mark.heavy  # a whole program, seconds long: run on the main interpreter
def test_zero_copy_example():
    out = _run("zero_copy.py")
    assert "summed in a worker, made under zero_copy (no copy)" in out.stdout
    assert "the worker saw the array as sent: True" in out.stdout
    assert "the result is an ordinary array: ndarray [1.0, 1.0, 1.0]" in out.stdout
    assert "copied because written since: 1" in out.stdout


@pytest.mark.heavy  # a whole program, seconds long: run on the main interpreter
def test_pipeline_example():
    out = _run("pipeline.py")
    assert "pipeline: 200 pages fetched, scored and written in" in out.stdout
    assert "page 7: {'url': 'http://127.0.0.1:" in out.stdout
    assert "'words': 3000, 'top': 'lane'" in out.stdout
