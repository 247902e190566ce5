"""The benchmark driver runs in quick mode and writes a table with computed targets; the
auto lane's evaluation generates its workloads reproducibly and measures them all."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest
from conftest import TIMEOUT

BENCHMARKS = os.path.join(os.path.dirname(__file__), "..", "benchmarks")
RUN = os.path.join(BENCHMARKS, "run.py")
AUTO_EVAL = os.path.join(BENCHMARKS, "auto_eval.py")
sys.path.insert(0, BENCHMARKS)

import _eval_families  # noqa: E402
import _eval_homes  # noqa: E402
import run as bench_run  # noqa: E402


@pytest.mark.heavy
def test_quick_run_writes_tables_and_targets(tmp_path):
    out = tmp_path / "BENCH.md"
    done = subprocess.run([sys.executable, RUN, "--quick", "--scenario", "roundtrip",
                           "--scenario", "startup", "--scenario", "pipeline",
                           "--output", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT * 2)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "## roundtrip" in text and "## startup" in text
    assert "| round trip >= 10x faster than stdlib |" in text
    assert "| 3-stage pipeline of tiny functions >= 100,000 items/s |" in text
    assert ("PASS" in text) or ("MISS" in text)
    assert "Python " in text and "cores" in text


def test_generated_workloads_are_reproducible_and_split_in_every_family():
    workloads = _eval_families.generate(7, 40)
    assert [w.id for w in workloads] == [w.id for w in _eval_families.generate(7, 40)]
    assert len({w.id for w in workloads}) == len(workloads)
    halves = {(w.family, _eval_families.half(w)) for w in workloads}
    assert halves == {(f, h) for f in _eval_families.FAMILIES for h in ("tune", "heldout")}
    # more workloads only add to the same seed's
    assert {w.id for w in workloads} <= {w.id for w in _eval_families.generate(7, 80)}
    for w in workloads:
        assert _eval_families.MIN_CALLS <= w.calls <= _eval_families.MAX_CALLS
        assert w.mode == "map" or w.calls <= _eval_families.SUBMIT_MAX_CALLS
        compile(_eval_homes.source(w.to_json()), w.id, "exec")
        json.dumps(w.to_json())


@pytest.mark.heavy
def test_auto_eval_times_every_lane_and_reports_targets(tmp_path):
    out = tmp_path / "eval.json"
    done = subprocess.run([sys.executable, AUTO_EVAL, "--quick", "--count", "2", "--family",
                           "sleep,py_cpu", "--busy", "--json", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT * 2)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    rows = results["halves"]["tune"] + results["halves"]["heldout"]
    assert sorted(r["family"] for r in rows) == ["py_cpu", "py_cpu", "sleep", "sleep"]
    assert len(results["busy"]) == 2 and results["busy_half"] == "heldout"
    for row in rows + results["busy"]:
        assert "error" not in row, row["error"]
        assert set(row["times"]) == {"inline", "thread", "process", "hybrid4", "hybrid16",
                                     "hybrid64"}
        assert all(t > 0 for t in row["times"].values())
        assert row["sequential"] > 0 and row["auto"] > 0 and row["auto_lanes"]
        assert row["best"] == min(row["times"].values())
    assert all(row["stored"] > 0 for row in rows)
    for target in ("total within 1.15x", "p90 within 1.3x", "worst within 2x",
                   "never slower than sequential", "with stored profiles"):
        assert f"auto eval (held-out): {target}" in done.stdout
        if target != "with stored profiles":
            assert f"auto eval (held-out, one core busy): {target}" in done.stdout
    assert "### heldout half" in done.stdout and "### tune half" not in done.stdout

    text = bench_run.render({}, {"cpu": "x", "cores": "2", "memory": "", "python": "3", "os": "",
                           "date": "", "packages": ""}, 1, True, {"auto_eval": results})
    assert "## auto_eval" in text and "| auto eval (held-out): worst within 2x" in text


def test_overhead_matrix_measures_each_cell_and_tables_and_plots_its_figures(
        monkeypatch, tmp_path):
    # The clusters take seconds to start: the measuring loop runs on the process lane and
    # on a runtime that is not installed here; the table, the target and the plot on
    # figures given.
    import overhead_matrix

    ours = ("multilane process lane", "multilane, shared array")
    monkeypatch.setattr(overhead_matrix, "PEERS", (*ours, "nothing"))
    monkeypatch.setitem(overhead_matrix.NEEDS, "nothing", "no_such_module_here")
    measured = overhead_matrix.measure(quick=True, runs=1)
    assert list(measured) == [*ours, "nothing"]
    assert len(measured["nothing"]) == 9 and set(measured["nothing"].values()) == {None}
    assert all(v > 0 for name in ours for v in measured[name].values())

    cells = list(measured["nothing"])
    figures = {name: dict.fromkeys(cells, 100.0)
               for name in ("multilane process lane", "multilane dask lane", "loky",
                            "dask LocalCluster")}
    figures["multilane dask lane"]["no-op, 1 KB"] = 130.0
    figures["multilane process lane"]["no-op, 1 KB"] = 50.0
    figures["loky"]["no-op, 1 KB"] = 250.0
    figures["loky"]["1 ms, 1 KB"] = math.nan
    figures["dask LocalCluster"]["1 ms, 1 KB"] = None
    (target,) = overhead_matrix.targets(figures)
    assert target == ("dask lane per no-op task within 1.2x of client.submit",
                      "1.30x (130 against 100 µs)", False)
    table = "\n".join(overhead_matrix.render(figures, "docs/x.png"))
    assert "| *floor* | 0 | 500 | 5,000 | 0 |" in table
    assert "| multilane process lane | 50 | 100 |" in table
    assert "| loky | 250 | failed | 100 |" in table
    assert "| dask LocalCluster | 100 | not installed | 100 |" in table
    # the fastest runtime that is not multilane's, and a cell with none measured
    assert ("| *process lane against the fastest other runtime* | 2.00x faster "
            "(dask LocalCluster) |  | 1.00x as fast (dask LocalCluster) |") in table
    assert "![the overhead matrix](docs/x.png)" in table

    pytest.importorskip("matplotlib")
    # make bench draws it in docs/ beside BENCHMARKS.md, and the section links it there
    info = {"cpu": "x", "cores": "2", "python": "3", "date": "today"}
    output = str(tmp_path / "BENCH.md")
    assert bench_run.draw_plot({}, info, output) is None
    link = bench_run.draw_plot({"overhead_matrix": figures}, info, output)
    assert link == os.path.join("docs", "overhead_matrix.png")
    assert (tmp_path / link).read_bytes().startswith(b"\x89PNG")


def test_latency_times_each_round_trip_and_reads_its_percentiles():
    # The measuring loop on a few calls, multilane's round trip once; the percentiles,
    # the table and the goals on figures given.
    import latency

    measured = latency.spread(lambda i: i, 200, 10)
    with latency.peer("multilane") as call:
        assert call is not None and call(41) == 41
    assert measured["p50"] <= measured["p99"] <= measured["p99.9"]
    assert latency.percentile([float(i) for i in range(1, 101)], 99.0) == 99.0
    assert latency.percentile([float(i) for i in range(1, 1001)], 99.9) == 999.0
    figures = {"calls": 1000, "warm": 10, "peers": {
        "multilane": {"p50": 10.0, "p99": 40.0, "p99.9": 60.0, "mean": 12.0, "cpu": 30.0,
                      "cpu_per_wall": 2.5},
        "stdlib": {"p50": 300.0, "p99": 400.0, "p99.9": 900.0, "mean": 320.0, "cpu": 300.0,
                   "cpu_per_wall": 0.9},
        "loky": None}}
    assert latency.targets(figures) == [
        ("round trip p50 <= 8 µs (goal)", "10.0 µs", False),
        ("round trip p99 <= 3x its p50 (goal)", "4.0x (40.0 against 10.0 µs)", False),
        ("CPU per round trip <= 2x its wall time (goal)", "2.50x (30.0 µs of CPU a call)",
         False)]
    table = "\n".join(latency.render(figures))
    assert "| multilane | 10.0 | 40.0 | 60.0 | 12.0 | 4.0x | 30.0 | 2.50x |" in table
    assert "| loky | not installed | | | | | | |" in table
    row = {"p50": 50.0, "p99": 100.0, "p99.9": 200.0, "cpu": 100.0, "cpu_per_wall": 1.0}
    figures.update(busy_calls=100, busy={"as chosen": {**row, "mean": 55.0},
                                         "always spinning": {**row, "mean": 190.0},
                                         "never spinning": {**row, "mean": 60.0}})
    assert latency.targets(figures)[-1] == (
        "round trip beside a busy core within 1.1x of never spinning",
        "0.92x (55.0 against 60.0 µs)", True)
    assert "| always spinning | 50.0 | 100.0 | 200.0 | 190.0 | 2.0x | 100.0 | 1.00x |" in "\n".join(
        latency.render(figures))


def test_the_busy_neighbour_measures_every_way_of_waiting():
    import latency

    measured = latency.busy_neighbour(100, 10)
    assert set(measured) == set(latency.BUSY_WAYS)
    assert all(0 < row["p50"] <= row["p99"] for row in measured.values())


def test_tree_cpu_counts_this_process_and_leaves_out_what_it_is_told():
    import latency

    before = latency.tree_cpu_s()
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass
    assert latency.tree_cpu_s() - before >= 0.03  # ticks of 10 ms
    parents = {2: 1, 3: 2, 4: 1, 5: 4, 6: 99}
    assert latency.family(parents, 1, frozenset()) == {1, 2, 3, 4, 5}
    assert latency.family(parents, 1, frozenset({4})) == {1, 2, 3}


def test_cpu_cost_times_wall_and_cpu_per_task_and_tables_them(monkeypatch):
    import cpu_cost

    monkeypatch.setattr(cpu_cost, "PEERS", ("multilane",))
    measured = cpu_cost.measure(quick=True, runs=1)
    assert set(measured) == set(cpu_cost.TASKS)
    for row in measured.values():
        assert row["multilane"] is not None and row["multilane"]["wall"] > 0
        assert row["multilane"]["cpu"] >= 0
    measured["map"]["loky"] = None
    table = "\n".join(cpu_cost.render(measured))
    assert "| map | loky | not installed | | |" in table
    assert "| pipelined submit | multilane |" in table


def test_competitors_take_turns_and_each_keeps_its_best_turn(monkeypatch, tmp_path):
    # Two fake competitors that log each turn and report the figures they are given: a
    # slow spell on one turn must not decide the ratio.
    package = tmp_path / "fake_scenario"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, figures in (("ours", [5.0, 2.0, 4.0]), ("theirs", [3.0, math.nan, 6.0])):
        (package / f"{name}.py").write_text(
            "import fake_scenario as log\n"
            f"FIGURES = {figures!r}\n".replace("nan", "float('nan')")
            + "def run(n, runs):\n"
            f"    log.turns = getattr(log, 'turns', []) + [({name!r}, runs)]\n"
            "    return FIGURES.pop(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(bench_run.SCENARIOS, "fake_scenario",
                        ("µs", False, 10, 1, ["ours", "theirs"]))
    assert bench_run.measure("fake_scenario", 10, runs=5) == {"ours": 2.0, "theirs": 3.0}
    import fake_scenario

    assert fake_scenario.turns == [("ours", 2), ("theirs", 2)] * 3
    assert bench_run.turns(5) == (3, 2) and bench_run.turns(5, quick=True) == (1, 5)
    assert math.isnan(bench_run.better(None, math.nan, True))  # failed on every turn
    assert bench_run.better(2.0, 3.0, True) == 3.0 and bench_run.better(2.0, 3.0, False) == 2.0
