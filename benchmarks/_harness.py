"""Shared benchmark helpers: best-of-N timing, the machine description, optional peers."""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

_SPIN = ("import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n"
         "    for _ in range(100_000):\n        pass\n")


@contextlib.contextmanager
def busy_core() -> Iterator[int]:
    """Another process spinning on one core for as long as the block runs (and no longer
    than this process: it looks for its parent every few milliseconds); its pid."""
    spinner = subprocess.Popen([sys.executable, "-c", _SPIN])
    try:
        yield spinner.pid
    finally:
        spinner.kill()
        spinner.wait()


def best_of(runs: int, fn: Callable[[], float]) -> float:
    """The smallest of ``runs`` measurements: the run least disturbed by a shared machine."""
    return min(fn() for _ in range(runs))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def have(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def machine() -> dict[str, str]:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    from importlib import metadata

    versions = []
    for name in ("multilane", "loky", "joblib", "mpire", "aiohttp", "uvloop", "numpy", "ray",
                 "distributed"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    return {
        "cpu": cpu, "cores": str(os.cpu_count()), "memory": mem,
        "python": sys.version.split()[0], "os": f"{platform.system()} {platform.release()}",
        "date": time.strftime("%Y-%m-%d"), "packages": ", ".join(versions),
    }
