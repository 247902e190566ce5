"""Ctrl-C, parent death and shutdown leave nothing behind: each case runs in a child Python
process that the test drives and inspects through /proc."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import _tasks
import pytest
from conftest import TIMEOUT, gone_within

import multilane
import multilane._future
from multilane.lanes.process import _collector

HERE = os.path.dirname(__file__)


# A child inherits an ignored SIGINT (a test run started in the background of a script:
# bash ignores SIGINT there), and Python then installs no KeyboardInterrupt handler: the
# children here take Ctrl-C as a terminal's program does, whatever the test run inherited.
DEFAULT_SIGINT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def _start(script: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", DEFAULT_SIGINT + textwrap.dedent(script)],
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_line(proc: subprocess.Popen) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    assert ready, "the child printed nothing in time"
    return proc.stdout.readline()


def _interrupt_and_check(proc: subprocess.Popen, worker_grace: float) -> None:
    """The child prints its workers' pids, then the time it caught KeyboardInterrupt:
    Ctrl-C must reach it within 1 s, end it within 3 s (a 5 s wait for a blocked collector
    once hid there, issue 14) and take every worker along."""
    try:
        pids = json.loads(_read_line(proc))
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        raised = json.loads(_read_line(proc))
        assert raised - sent < 1.0, f"KeyboardInterrupt took {raised - sent:.2f} s"
        proc.wait(timeout=TIMEOUT)
        assert time.monotonic() - sent < 3.0, f"exit took {time.monotonic() - sent:.2f} s"
        assert "KeyboardInterrupt" in proc.stderr.read()
        assert proc.returncode != 0
        for pid in pids:
            assert gone_within(pid, worker_grace), f"worker {pid} outlived its parent's Ctrl-C"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("wait_in", ["result", "map", "as_completed", "shutdown"])
def test_ctrl_c_while_waiting(wait_in):
    proc = _start(f"""
        import json, sys, time, concurrent.futures as cf
        import multilane, _tasks
        ex = multilane.ProcessPoolExecutor(2)
        futures = [ex.submit(_tasks.countdown, 10**10) for _ in range(4)]
        try:
            # Inside the try: the test may send SIGINT as soon as it reads this line.
            print(json.dumps(ex.statistics().worker_pids), flush=True)
            if "{wait_in}" == "result":
                futures[0].result()
            elif "{wait_in}" == "map":
                list(ex.map(_tasks.countdown, [10**10] * 4))
            elif "{wait_in}" == "shutdown":
                ex.shutdown(wait=True)
            else:
                list(cf.as_completed(futures))
        except KeyboardInterrupt:
            print(json.dumps(time.monotonic()), flush=True)
            raise
    """)
    _interrupt_and_check(proc, worker_grace=0.5)


def test_a_future_lock_left_held_does_not_hang_terminate(no_leaks):
    # A Ctrl-C in the setup of concurrent.futures.as_completed (or wait) can leave a
    # future's lock held by the interrupted thread for good. Tearing the pool down must
    # not wait for it: the collector gives up settling that future.
    ex = multilane.ProcessPoolExecutor(1)
    assert ex.submit(_tasks.identity, 0).result(TIMEOUT) == 0  # the worker is ready
    future = ex.submit(_tasks.countdown, 10**10)
    assert future.running()  # sent at once: the collector will have to settle it
    future._condition.acquire()  # what the interrupted setup leaves behind
    try:
        ex.terminate()
        assert not ex._collector.is_alive(), "the collector hung on the held lock"
    finally:
        future._condition.release()


def test_a_futures_condition_is_acquired_in_c():
    # as_completed acquires each future's condition in a loop, outside any try: a Python
    # acquire() would be one more place for a Ctrl-C to land between two acquisitions.
    future = multilane._future.LaneFuture()
    assert type(future._condition.acquire).__name__ == "builtin_function_or_method"
    assert type(future._condition.release).__name__ == "builtin_function_or_method"


def test_after_ctrl_c_terminate_does_not_wait_for_a_collector_stuck_on_its_lock(
        no_leaks, monkeypatch, tmp_path):
    # The collector looks at a future's lock (_can_settle), then settles the future. In
    # between, a Ctrl-C can make the interrupted thread take that lock and keep it (an
    # interrupt landing in result() or done() just after their acquire). terminate(), from
    # that thread, waited out join(5.0) for a collector that could never go on: the rare
    # 5 s exit after Ctrl-C (issue 14). The hook makes the collector wait there.
    ex = multilane.ProcessPoolExecutor(1)
    assert ex.submit(_tasks.identity, 0).result(TIMEOUT) == 0  # the worker is ready
    release = tmp_path / "release"
    future = ex.submit(_tasks.block_until_file, str(release))
    [pid] = ex.statistics().worker_pids
    looked, taken = threading.Event(), threading.Event()
    settle = _collector.complete

    def complete_after_the_look(task, kind, value):
        if task.future is future:
            looked.set()
            taken.wait(TIMEOUT)
        settle(task, kind, value)

    monkeypatch.setattr(_collector, "complete", complete_after_the_look)
    release.touch()
    assert looked.wait(TIMEOUT)
    future._condition.acquire()  # what the interrupted thread leaves behind
    try:
        taken.set()
        started = time.monotonic()
        ex.terminate()
        took = time.monotonic() - started
        assert gone_within(pid, 0), "terminate() returned before its worker was gone"
    finally:
        future._condition.release()
    ex._collector.join(TIMEOUT)
    assert took < 3.0, f"terminate() waited {took:.1f} s for a collector blocked on its caller"
    assert not ex._collector.is_alive()


def test_terminate_returns_when_an_interrupt_left_the_pool_lock_held(no_leaks):
    # A Ctrl-C landing just after submit's try_acquire() of the pool lock, before its try,
    # leaves the lock held for good: terminate() then hung in its own `with self._lock`
    # (1 Ctrl-C in 13 during a long map with chunksize=1). It must still kill the workers
    # and return. It runs in a thread here, so that the test can let the lock go at the end.
    ex = multilane.ProcessPoolExecutor(2)
    pids = ex.statistics().worker_pids
    queued = ex.submit(_tasks.identity, 1)
    ex._lock.__enter__()  # and never __exit__, as the interrupted submit leaves it
    returned = threading.Event()
    stopper = threading.Thread(target=lambda: (ex.terminate(), returned.set()))
    stopper.start()
    try:
        assert returned.wait(TIMEOUT), "terminate() hung on the pool lock"
        for pid in pids:
            assert gone_within(pid, 0), f"worker {pid} outlived terminate()"
    finally:
        ex._lock.__exit__()
        stopper.join(TIMEOUT)
    ex._collector.join(TIMEOUT)
    assert not ex._collector.is_alive()
    assert queued.done()


def test_ctrl_c_in_an_executors_shutdown_does_not_wait_for_its_lanes_at_exit():
    # The KeyboardInterrupt reaches Executor.shutdown(wait=True), not a future: the lanes'
    # exit hook then waited for a coroutine that never ends (forever; issue 14).
    proc = _start("""
        import asyncio, json, time, multilane, _tasks

        async def forever():
            await asyncio.sleep(3600)

        ex = multilane.Executor(processes=1, threads=1)
        ex.options(lane="process").submit(_tasks.countdown, 10**10)
        ex.submit(forever)
        try:
            print(json.dumps(ex.statistics()["process"].worker_pids), flush=True)
            ex.shutdown(wait=True)
        except KeyboardInterrupt:
            print(json.dumps(time.monotonic()), flush=True)
            raise
    """)
    _interrupt_and_check(proc, worker_grace=1.0)


def test_ctrl_c_inside_with_block_does_not_wait_for_tasks():
    proc = _start("""
        import json, multilane, _tasks
        with multilane.ProcessPoolExecutor(2) as ex:
            futures = [ex.submit(_tasks.countdown, 10**10) for _ in range(4)]
            print(json.dumps(ex.statistics().worker_pids), flush=True)
            futures[0].result()
    """)
    try:
        pids = json.loads(_read_line(proc))
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=5)
        for pid in pids:
            assert gone_within(pid, 0.5)
    finally:
        proc.kill()
        proc.wait()


def test_parent_sigkill_takes_workers_with_it():
    proc = _start("""
        import json, multilane, _tasks
        ex = multilane.ProcessPoolExecutor(2)
        futures = [ex.submit(_tasks.countdown, 10**10) for _ in range(2)]
        print(json.dumps(ex.statistics().worker_pids), flush=True)
        futures[0].result()
    """)
    try:
        pids = json.loads(_read_line(proc))
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        for pid in pids:
            assert gone_within(pid, 2.0), f"worker {pid} outlived its SIGKILLed parent"
    finally:
        proc.kill()
        proc.wait()


def test_shutdown_leaves_no_process_fd_thread_or_shm():
    proc = _start("""
        import json, os, threading, multilane, _tasks
        def snapshot():
            kids = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    if stat[1] == str(os.getpid()):
                        kids.append(int(entry))
            return {"children": kids, "fds": sorted(os.listdir("/proc/self/fd")),
                    "threads": sorted(os.listdir("/proc/self/task")),
                    "shm": [n for n in os.listdir("/dev/shm") if "multilane" in n]}
        before = snapshot()
        for _ in range(3):
            ex = multilane.ProcessPoolExecutor(2)
            assert list(ex.map(_tasks.square, range(100))) == [i * i for i in range(100)]
            ex.submit(_tasks.big_bytes, 4 << 20).result()
            ex.shutdown()
        # Thread.join() returns a moment before the OS thread has left /proc: a bounded wait.
        import time
        deadline = time.monotonic() + 2
        after = snapshot()
        while after["threads"] != before["threads"] and time.monotonic() < deadline:
            time.sleep(0.001)
            after = snapshot()
        print(json.dumps([before, after]))
    """)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    before, after = json.loads(out)
    assert after["children"] == [], after
    assert after["shm"] == []
    assert after["fds"] == before["fds"]
    assert after["threads"] == before["threads"]


def test_exit_without_shutdown_finishes_work_and_reaps():
    proc = _start("""
        import multilane, _tasks
        ex = multilane.ProcessPoolExecutor(2)
        futures = [ex.submit(_tasks.square, i) for i in range(50)]
        futures[-1].add_done_callback(lambda f: print("last", f.result(), flush=True))
    """)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert out.strip() == "last 2401"


@pytest.mark.parametrize("wait_on", ["process", "hybrid", "thread", "async"])
def test_ctrl_c_in_an_executor_stops_every_lane(wait_on):
    """Ctrl-C while waiting on any lane of a multilane.Executor: KeyboardInterrupt within
    1 s, every process worker gone, and the program exits without waiting for the
    blocked thread or coroutine."""
    proc = _start(f"""
        import asyncio, json, time, multilane, _tasks

        async def forever():
            await asyncio.sleep(3600)

        with multilane.Executor(processes=1, hybrid_processes=1, threads=2) as ex:
            futures = {{
                "process": ex.options(lane="process").submit(_tasks.countdown, 10**10),
                "hybrid": ex.options(lane="hybrid").submit(_tasks.countdown, 10**10),
                "thread": ex.options(lane="thread").submit(
                    _tasks.block_until_file, "/nonexistent", 3600),
                "async": ex.submit(forever),
            }}
            pids = [p for lane in ("process", "hybrid")
                    for p in ex.statistics()[lane].worker_pids]
            try:
                print(json.dumps(pids), flush=True)
                futures["{wait_on}"].result()
            except KeyboardInterrupt:
                print(json.dumps(time.monotonic()), flush=True)
                raise
    """)
    _interrupt_and_check(proc, worker_grace=1.0)


def test_a_pool_whose_thread_cannot_start_leaves_no_worker(no_leaks, monkeypatch):
    """At interpreter shutdown a thread cannot start: the pool's constructor fails, and the
    workers it had started are gone with it."""
    def refuse(self):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="interpreter shutdown"):
        multilane.ProcessPoolExecutor(2)
