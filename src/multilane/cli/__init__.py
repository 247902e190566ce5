"""The ``multilane`` command: ``multilane showdown`` and ``multilane advise``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multilane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    showdown = commands.add_parser(
        "showdown", help="replay the classic GIL experiment on this machine",
        description="Runs CPU-bound countdown tasks sequentially, on threads, on "
                    "multiprocessing.Pool and on multilane, and prints times and speedups.")
    showdown.add_argument("--n", type=_positive, default=None,
                          help="countdown length per task (default: about 0.3 s of work each)")
    showdown.add_argument("--tasks", type=_positive, default=4, help="number of tasks (default 4)")
    showdown.add_argument("--workers", type=_positive, default=None,
                          help="threads / processes (default: CPU count)")
    showdown.add_argument("--repeat", type=_positive, default=3,
                          help="runs per lane; the best counts (default 3)")
    showdown.add_argument("--json", action="store_true", help="print the figures as JSON")
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
        from ._showdown import run

        return run(n=args.n, tasks=args.tasks, workers=args.workers, as_json=args.json,
                   repeat=args.repeat)
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
