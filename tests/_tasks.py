"""Importable task functions for the tests (workers must be able to import them)."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time


def identity(x):
    return x


def add(a, b=0):
    return a + b


def square(x):
    return x * x


def raise_value_error(message):
    raise ValueError(message)


def get_pid(_=None):
    return os.getpid()


def kill_self(sig=signal.SIGKILL):
    os.kill(os.getpid(), sig)
    time.sleep(10)  # not reached: the signal kills the worker


def exit_now(code):
    os._exit(code)


def segfault():
    ctypes.string_at(0)


def block_until_file(path, timeout=30.0):
    """Blocks until ``path`` exists (tests create it to release the task)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.005)
    return os.getpid()


def announce_and_block(path, timeout=30.0):
    """Writes this worker's pid to ``path`` then sleeps, so a test can kill it mid-task."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    time.sleep(timeout)


def countdown(n):
    while n > 0:
        n -= 1
    return n


def thread_count(_=None):
    return threading.active_count()


class Unpicklable:
    def __reduce__(self):
        raise TypeError("Unpicklable refuses to be pickled")


def return_unpicklable():
    return threading.Lock()


class CustomError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def raise_custom(code):
    raise CustomError(code, "custom detail")


def init_set_global(value):
    global INITIALIZED
    INITIALIZED = value


def read_global(_=None):
    return globals().get("INITIALIZED")


def init_fail():
    raise RuntimeError("initializer exploded")


def big_bytes(n):
    return bytes(range(256)) * (n // 256)


def length(data):
    return len(data)
