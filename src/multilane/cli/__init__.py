"""The ``multilane`` command: ``multilane showdown`` and ``multilane advise``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

EXPERIMENTS = ("computing", "waiting", "many", "mixed")  # as _experiments names them


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multilane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    showdown = commands.add_parser(
        "showdown", help="replay the GIL experiments on this machine",
        description="Runs four experiments (computing, waiting on a slow local server, "
                    "thousands of requests at once, and fetching then scoring pages) "
                    "sequentially, on threads, on a process pool, with asyncio where it "
                    "applies and on multilane's auto lane; prints times, speedups, bars "
                    "and a sentence per result.")
    showdown.add_argument("--quick", action="store_true",
                          help="smaller experiments, one run each (under 30 s on 2 cores)")
    showdown.add_argument("--only", type=_experiment_names, default=None,
                          help=f"run only these experiments, comma-separated "
                               f"({', '.join(EXPERIMENTS)})")
    showdown.add_argument("--plot", metavar="FILE", default=None,
                          help="also draw the speedups as a grouped bar chart in FILE "
                               "(.png, .svg...; needs matplotlib)")
    showdown.add_argument("--json", action="store_true", help="print the figures as JSON")
    showdown.add_argument("--repeat", type=_positive, default=None,
                          help="runs per contender; the best counts (default 3, 1 with "
                               "--quick)")
    showdown.add_argument("--scale", type=_fraction, default=1.0,
                          help="multiply every experiment's size by this (default 1)")
    showdown.add_argument("--n", type=_positive, default=None,
                          help="countdown length per task (default: about 0.5 s of work, "
                               "0.1 s with --quick)")
    showdown.add_argument("--tasks", type=_positive, default=None,
                          help="countdowns (default: two per CPU)")
    showdown.add_argument("--workers", type=_positive, default=None,
                          help="processes in the pools (default: CPU count)")
    advise = commands.add_parser(
        "advise", help="time a function in every lane and recommend one",
        description="Runs module:function (or file.py:function) with the given arguments "
                    "in each lane and through the auto lane, prints a table and the auto "
                    "lane's evidence.")
    advise.add_argument("target", help="module:function or path/to/file.py:function")
    advise.add_argument("args", nargs="*", help="arguments, as Python literals")
    advise.add_argument("--calls", type=_positive, default=50,
                        help="calls per lane (default 50)")
    args = parser.parse_args(argv)
    try:
        if args.command == "advise":
            from ._advise import run as advise_run

            return advise_run(args.target, args.args, args.calls)
        from ._showdown import PlotUnavailable, run

        try:
            return run(quick=args.quick, n=args.n, tasks=args.tasks, workers=args.workers,
                       repeat=args.repeat, scale=args.scale, only=args.only,
                       as_json=args.json, plot=args.plot)
        except PlotUnavailable as exc:
            print(f"multilane showdown: {exc}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _experiment_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPERIMENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown experiment {', '.join(map(repr, unknown or [text]))}: expected some "
            f"of {', '.join(EXPERIMENTS)}")
    return names
