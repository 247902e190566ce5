"""The same benchmarks on an older commit and on this tree, interleaved: is there a regression?

``python benchmarks/compare_commits.py REV [--rounds N] [--only a,b]`` builds REV's package
(a git worktree, installed with pip into a folder of its own), then times each scenario
below in fresh processes, alternating the old and the new, and prints best-of-rounds and
the new/old ratio. Each side runs its own benchmark files, so an API change between the
two is measured as each tree's users write it. Ratios, not absolute figures, are what it
reports: the machine's noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
# scenario module (benchmarks/<name>/multilane.py), n, runs, unit, better
SCENARIOS = [("roundtrip", 3000, 3, "µs per task", min),
             ("pipelined_submit", 50_000, 3, "tasks/s", max),
             ("map", 500_000, 3, "s for the map", min),
             ("thread_overhead", 50_000, 3, "µs per call", min)]
ONE = """
import importlib, sys
scenario, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(importlib.import_module(scenario + ".multilane").run(n, runs))
"""


def build(rev: str, into: str) -> tuple[str, str]:
    """(site folder with REV's package, REV's benchmarks folder)."""
    tree = os.path.join(into, "tree")
    subprocess.run(["git", "-C", TOP, "worktree", "add", "--detach", tree, rev], check=True,
                   capture_output=True)
    site = os.path.join(into, "site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                    "--no-deps", "--target", site, tree], check=True)
    return site, os.path.join(tree, "benchmarks")


def measure(scenario: str, n: int, runs: int, path: str, cwd: str) -> float:
    env = dict(os.environ, PYTHONPATH=path)
    out = subprocess.run([sys.executable, "-c", ONE, scenario, str(n), str(runs)], env=env,
                         cwd=cwd, capture_output=True, text=True, timeout=900, check=True)
    return float(out.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", help="comma-separated scenario names")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory(prefix="multilane-compare-") as into:
        site, old_benchmarks = build(args.rev, into)
        try:
            sides = {"old": (f"{site}:{old_benchmarks}", old_benchmarks),
                     "new": (HERE, HERE)}  # the installed package: this tree, built
            print(f"| scenario | {args.rev} | this tree | unit | new / old |")
            print("| --- | --- | --- | --- | --- |")
            for name, n, runs, unit, best in SCENARIOS:
                if only and name not in only:
                    continue
                got: dict[str, list[float]] = {"old": [], "new": []}
                for _ in range(args.rounds):
                    for side, (path, cwd) in sides.items():
                        got[side].append(measure(name, n, runs, path, cwd))
                old, new = best(got["old"]), best(got["new"])
                print(f"| {name} | {old:.4g} | {new:.4g} | {unit} | {new / old:.3f} |",
                      flush=True)
        finally:
            subprocess.run(["git", "-C", TOP, "worktree", "remove", "--force",
                            os.path.join(into, "tree")], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
