"""The benchmark driver runs in quick mode and writes a table with computed targets."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import TIMEOUT

RUN = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "run.py")


def test_quick_run_writes_tables_and_targets(tmp_path):
    out = tmp_path / "BENCH.md"
    done = subprocess.run([sys.executable, RUN, "--quick", "--scenario", "roundtrip",
                           "--scenario", "startup", "--output", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT * 2)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "## roundtrip" in text and "## startup" in text
    assert "| round trip >= 10x faster than stdlib |" in text
    assert ("PASS" in text) or ("MISS" in text)
    assert "Python " in text and "cores" in text
