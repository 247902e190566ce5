"""Progress bars for maps, drawn in a real pseudo-terminal: tqdm's, rich's, or the plain
line when neither is installed; nothing when stderr is not a terminal, unless forced."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap

import pytest
from conftest import TIMEOUT

import multilane

CHILD = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if not installed
sys.path.insert(0, {tests!r})
import _tasks
import multilane
from multilane import _progress

_progress.DELAY_S = {delay!r}  # a bar at once: the map is shorter than the usual delay
with multilane.Executor(processes=2, threads=4) as ex:
    view = ex.options(lane={lane!r})
    got = list(view.map(_tasks.square, range(200), chunksize={chunksize!r},
                        buffersize={buffersize!r}, progress={progress!r}))
    assert got == [i * i for i in range(200)], got
print("done", flush=True)
"""


class _Recorder:
    """A backend that counts what the bar tells it."""

    def __init__(self):
        self.n, self.closed = 0, False

    def advance(self, n, detail):
        self.n += n

    def close(self):
        self.closed = True


def _run(terminal: bool, blocked=(), lane="thread", chunksize=None, buffersize=None,
         progress=True, delay=0.0) -> tuple[str, str]:
    """Runs a map with a bar in a child whose stderr is a pseudo-terminal (or a pipe):
    (what it wrote to stderr, to stdout)."""
    code = textwrap.dedent(CHILD).format(
        blocked=tuple(blocked), tests=os.path.dirname(__file__), lane=lane,
        chunksize=chunksize, buffersize=buffersize, progress=progress, delay=delay)
    env = {**os.environ, "COLUMNS": "100"}
    if not terminal:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=TIMEOUT, env=env, check=True)
        return done.stderr, done.stdout
    main, secondary = pty.openpty()
    # A terminal 100 columns wide, as a real one has a size (a new one reads 0 x 0).
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                 stderr=secondary, env=env)
    finally:
        os.close(secondary)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([main], [], [], TIMEOUT)
            assert ready, "the child wrote nothing for too long"
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out = child.stdout.read().decode()  # type: ignore[union-attr]
        assert child.wait(TIMEOUT) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(main)
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    return b"".join(chunks).decode(errors="replace"), out


def test_tqdm_draws_the_bar_in_a_terminal_counting_items_not_chunks():
    pytest.importorskip("tqdm")
    err, out = _run(True, lane="process", chunksize=50)
    assert out.strip() == "done"
    assert "200/200" in err, err  # four chunks of 50 items: the bar counts 200


def test_rich_draws_it_when_tqdm_is_missing():
    pytest.importorskip("rich")
    err, out = _run(True, blocked=("tqdm",), lane="process", chunksize=50)
    assert out.strip() == "done"
    assert "100%" in err, err


@pytest.mark.parametrize("lane, buffersize", [("thread", None), ("process", 16),
                                              ("auto", None)])
def test_a_plain_line_without_tqdm_or_rich(lane, buffersize):
    err, out = _run(True, blocked=("tqdm", "rich"), lane=lane, buffersize=buffersize)
    assert out.strip() == "done"
    assert "200/200 items" in err, err
    assert err.endswith("\n") or err.endswith("\r\n")


def test_silent_when_stderr_is_not_a_terminal_unless_forced():
    err, out = _run(False, blocked=("tqdm", "rich"))
    assert out.strip() == "done" and err == ""
    err, _ = _run(False, blocked=("tqdm", "rich"), progress="always")
    assert "200/200 items" in err


def test_a_bad_progress_value_is_refused_by_name():
    with multilane.Executor(processes=1, threads=2) as ex:
        with pytest.raises(ValueError, match="progress"):
            ex.map(abs, range(3), progress="yes")


def test_a_map_left_early_closes_its_bar(capsys, monkeypatch):
    from multilane import _progress

    monkeypatch.setattr(_progress, "_tqdm", lambda *_: None)  # the plain line, here
    monkeypatch.setattr(_progress, "_rich", lambda *_: None)
    monkeypatch.setattr(_progress, "DELAY_S", 0.0)
    with multilane.Executor(processes=1, threads=2) as ex:
        for buffersize in (None, 4):
            results = ex.options(lane="thread").map(abs, range(100), buffersize=buffersize,
                                                    progress="always")
            assert next(results) == 0
            results.close()
    lines = capsys.readouterr().err.split("\n")
    # Each bar ended its line when its map was closed: two lines, then nothing.
    assert len(lines) == 3 and lines[-1] == "", lines
    assert all("/100 items" in line for line in lines[:2]), lines


def test_the_bar_ends_at_what_the_consumer_took_even_before_the_last_callbacks():
    """A future wakes its waiter before it runs its done-callbacks: the consumer can take
    the last result, and close the bar, before the bar has counted it (it ended at
    199/200 once on CI)."""
    from multilane import _progress

    backend = _Recorder()
    bar = _progress.Bar(lambda: backend)
    bar.add(199)
    bar.close(200)
    assert backend.n == 200 and backend.closed
    bar.add(1)  # the late callback: the bar is closed, nothing counts twice
    assert backend.n == 200


def test_a_map_shorter_than_the_delay_draws_no_bar():
    err, out = _run(True, delay=60.0)
    assert out.strip() == "done" and "items" not in err, err


def test_the_bar_appears_after_the_delay_with_the_count_so_far(monkeypatch):
    from multilane import _progress

    made: list[_Recorder] = []

    def make():
        made.append(_Recorder())
        return made[-1]

    now = [100.0]
    monkeypatch.setattr(_progress.time, "monotonic", lambda: now[0])
    early = _progress.Bar(make, delay=0.2)
    early.add(5)
    now[0] += 0.1
    early.close(5)  # before the delay: nothing was ever drawn
    assert made == []
    bar = _progress.Bar(make, delay=0.2)
    bar.add(7)  # counted before the bar appears
    assert made == []
    now[0] += 0.3
    bar.add(3)  # the first count after the delay: the bar, with all ten
    assert len(made) == 1 and made[0].n == 10
    bar.close(12)  # the consumer took two more than the callbacks had counted
    assert made[0].n == 12 and made[0].closed
    # A map that ran past the delay with no count in between still ends with its bar.
    quiet = _progress.Bar(make, delay=0.2)
    now[0] += 5.0
    quiet.close(4)
    assert len(made) == 2 and made[1].n == 4 and made[1].closed
