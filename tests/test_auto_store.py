"""Profiles that last (``multilane.auto._store``): the fingerprints that key them, and the
SQLite store that keeps them across runs, forks and processes writing at once. No timing."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import weakref

import pytest
from conftest import TIMEOUT, gone_within, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from multilane.auto import _store
from multilane.auto._fingerprints import function_fingerprint, machine_fingerprint
from multilane.auto._store import ProfileStore, default_path


@pytest.fixture(autouse=True)
def _store_on(monkeypatch):
    """conftest turns the store off for the suite; these tests are of the store itself."""
    monkeypatch.setenv("MULTILANE_PROFILES", "on")


# ---------------------------------------------------------------- fingerprints


def _compiled(source: str, name: str = "work", module: str = "subject"):
    """The function ``name`` of ``source``, compiled afresh: a new code object each time."""
    namespace: dict = {"__name__": module}
    exec(compile(textwrap.dedent(source), f"{module}.py", "exec"), namespace)
    return namespace[name]


def test_machine_fingerprint_is_a_short_stable_digest():
    digest = machine_fingerprint()
    assert digest == machine_fingerprint()
    assert len(digest) == 16
    int(digest, 16)


def test_the_same_code_has_the_same_fingerprint_and_changed_code_another():
    one = _compiled("def work(x):\n    return x + 1\n")
    again = _compiled("def work(x):\n    return x + 1\n")
    constant = _compiled("def work(x):\n    return x + 2\n")
    operator = _compiled("def work(x):\n    return x - 1\n")
    assert one.__code__ is not again.__code__
    assert function_fingerprint(one) == function_fingerprint(again)
    assert len({function_fingerprint(f) for f in (one, constant, operator)}) == 3


def test_module_and_qualified_name_are_part_of_the_fingerprint():
    source = "def work(x):\n    return x + 1\n"
    assert (function_fingerprint(_compiled(source, module="a"))
            != function_fingerprint(_compiled(source, module="b")))
    renamed = _compiled(source)
    renamed.__qualname__ = "other"
    assert function_fingerprint(renamed) != function_fingerprint(_compiled(source))


def test_a_change_inside_a_nested_function_changes_the_outer_fingerprint():
    outer = """
        def work(n):
            def inner(k):
                return k * {}
            return [inner(i) for i in range(n)]
        """
    assert (function_fingerprint(_compiled(outer.format(2)))
            != function_fingerprint(_compiled(outer.format(3))))
    assert (function_fingerprint(_compiled(outer.format(2)))
            == function_fingerprint(_compiled(outer.format(2))))


def test_closures_of_one_code_share_a_fingerprint():
    def make(k):
        def add(x):
            return x + k
        return add

    assert function_fingerprint(make(1)) == function_fingerprint(make(2)) is not None
    assert function_fingerprint(make(1)) != function_fingerprint(make)


class Subject:
    def method(self, x):
        return x * 2

    @classmethod
    def build(cls, x):
        return x

    def __call__(self, x):
        return x


def test_partials_and_bound_methods_stand_for_their_function():
    def work(a, b):
        return a + b

    assert function_fingerprint(functools.partial(work, 1)) == function_fingerprint(work)
    assert (function_fingerprint(functools.partial(functools.partial(work, 1), 2))
            == function_fingerprint(work))
    assert function_fingerprint(Subject().method) == function_fingerprint(Subject.method)
    assert function_fingerprint(Subject.build) == function_fingerprint(Subject.build.__func__)
    assert (function_fingerprint(functools.partial(Subject().method, 3))
            == function_fingerprint(Subject.method))


def test_a_decorated_function_changes_with_the_code_it_wraps():
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return fn(*args)
        return wrapper

    one = decorate(_compiled("def work(x):\n    return x + 1\n"))
    two = decorate(_compiled("def work(x):\n    return x + 2\n"))
    assert function_fingerprint(one) != function_fingerprint(two)
    cached = functools.lru_cache(_compiled("def work(x):\n    return x + 1\n"))
    assert function_fingerprint(cached) is not None


def test_builtins_lambdas_and_objects():
    assert function_fingerprint(len) == function_fingerprint(len) is not None
    assert function_fingerprint(len) != function_fingerprint(abs)
    assert function_fingerprint([].append) is not None
    assert function_fingerprint(lambda x: x) is not None
    assert function_fingerprint(lambda x: x) != function_fingerprint(lambda x: x + 1)
    assert function_fingerprint(Subject()) is None  # a callable object: not stored
    assert function_fingerprint(Subject) is None
    assert function_fingerprint(42) is None


def test_an_object_whose_attributes_raise_has_no_fingerprint():
    class Hostile:
        def __getattr__(self, name):
            raise RuntimeError(name)

        def __call__(self):
            return None

    assert function_fingerprint(Hostile()) is None


SUBJECT_MODULE = """
def work(n, scale=2.5):
    def inner(k):
        if k in {"alpha", "beta", "gamma", "delta", "epsilon"}:
            return k * scale
        return (n, -0.0, b"x", None, 1e300, 3j)
    return [inner(i) for i in range(n)]
"""


def test_the_fingerprint_is_the_same_in_another_process(tmp_path, monkeypatch):
    (tmp_path / "fingerprint_subject.py").write_text(SUBJECT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import fingerprint_subject

    script = ("import sys; sys.path.insert(0, sys.argv[1]); import fingerprint_subject; "
              "from multilane.auto._fingerprints import function_fingerprint as f; "
              "print(f(fingerprint_subject.work))")
    here = function_fingerprint(fingerprint_subject.work)
    assert here is not None
    for seed in ("1", "2"):  # the set constant iterates in another order under each seed
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], timeout=TIMEOUT,
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == here


# ---------------------------------------------------------------- the store


def _fresh(path) -> ProfileStore:
    """Another store on the same file, as the next run would open it."""
    return ProfileStore.open(path)


def test_records_survive_to_a_new_store(tmp_path, no_leaks):
    path = tmp_path / "profiles.sqlite3"
    store = ProfileStore.open(str(path))
    assert store.path == path and store.enabled
    store.save("f", 0, {"lane": "thread", "work": 1.5e-3})
    store.save("f", 2, {"lane": "process", "work": 0.25})
    assert store.flush() is True
    store.close()
    again = _fresh(path)
    assert again.load("f", 0) == {"lane": "thread", "work": 1.5e-3}
    assert again.load("f", 2) == {"lane": "process", "work": 0.25}
    assert again.load("f", 1) is None
    assert again.load("g", 0) is None
    again.close()


def test_load_sees_saves_not_yet_flushed(tmp_path):
    store = ProfileStore.open(tmp_path / "p.sqlite3")
    store.save("before", 0, {"n": 1})  # queued before the first load
    assert store.load("before", 0) == {"n": 1}
    store.save("after", 0, {"n": 2})
    store.save("before", 0, {"n": 3})  # replaces
    assert store.load("after", 0) == {"n": 2}
    assert store.load("before", 0) == {"n": 3}
    store.close()
    again = _fresh(tmp_path / "p.sqlite3")
    assert again.load("before", 0) == {"n": 3}
    again.close()


def test_a_saved_record_is_a_copy(tmp_path):
    store = ProfileStore.open(tmp_path / "p.sqlite3")
    record = {"lanes": ["thread"]}
    store.save("f", 0, record)
    record["lanes"].append("process")
    assert store.load("f", 0) == {"lanes": ["thread"]}
    store.close()


def test_another_machine_sees_none_of_them(tmp_path, monkeypatch):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("f", 0, {"here": True})
    store.close()
    monkeypatch.setattr(_store, "machine_fingerprint", lambda: "another machine")
    elsewhere = _fresh(path)
    assert elsewhere.load("f", 0) is None
    elsewhere.save("f", 0, {"here": False})
    elsewhere.close()
    monkeypatch.setattr(_store, "machine_fingerprint", machine_fingerprint)
    assert _fresh(path).load("f", 0) == {"here": True}


def test_records_that_json_cannot_hold_are_dropped(tmp_path):
    store = ProfileStore.open(tmp_path / "p.sqlite3")
    store.save("nan", 0, {"work": float("nan")})
    store.save("object", 0, {"what": object()})
    store.save("list", 0, [1, 2])  # type: ignore[arg-type]
    store.save("ok", 0, {"work": 1.0})
    assert store.flush()
    store.close()
    again = _fresh(tmp_path / "p.sqlite3")
    assert [again.load(k, 0) for k in ("nan", "object", "list", "ok")] == [
        None, None, None, {"work": 1.0}]
    again.close()


def test_rows_that_are_not_a_json_object_are_ignored(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("valid", 0, {"ok": 1})
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany("INSERT INTO profiles VALUES (?, ?, ?, ?, 0)",
                         [(machine_fingerprint(), name, 0, text)
                          for name, text in (("list", "[1, 2]"), ("broken", "{'no"),
                                             ("number", "7"), ("blob", b"\xff\x00"))])
    again = _fresh(path)
    assert [again.load(k, 0) for k in ("valid", "list", "broken", "number", "blob")] == [
        {"ok": 1}, None, None, None, None]
    again.close()


JSON = st.recursive(st.none() | st.booleans() | st.integers()
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(), JSON, max_size=5), st.text(), st.integers(0, 20))
def test_any_json_object_round_trips(record, function, bucket):
    with tempfile.TemporaryDirectory() as folder:
        store = ProfileStore.open(os.path.join(folder, "p.sqlite3"))
        store.save(function, bucket, record)
        assert store.load(function, bucket) == record
        store.close()
        again = _fresh(os.path.join(folder, "p.sqlite3"))
        assert again.load(function, bucket) == record
        again.close()


def test_load_after_the_first_does_not_touch_sqlite(tmp_path, monkeypatch):
    class Tripwire(sqlite3.Connection):
        armed = False

        def execute(self, *args, **kwargs):
            assert not Tripwire.armed, "load went to SQLite"
            return super().execute(*args, **kwargs)

        def executemany(self, *args, **kwargs):
            assert not Tripwire.armed, "load went to SQLite"
            return super().executemany(*args, **kwargs)

        def cursor(self, *args, **kwargs):
            assert not Tripwire.armed, "load went to SQLite"
            return super().cursor(*args, **kwargs)

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, factory=Tripwire, **k))
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("f", 0, {"n": 1})
    store.close()
    store = _fresh(path)
    assert store.load("f", 0) == {"n": 1}  # the one query
    Tripwire.armed = True
    try:
        assert [store.load("f", 0) for _ in range(3)] == [{"n": 1}] * 3
        assert store.load("g", 5) is None
        assert store.flush() is True  # nothing queued: nothing to do either
    finally:
        Tripwire.armed = False
    store.close()


def test_flush_with_nothing_queued_opens_nothing(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    assert store.flush() is True
    assert not path.exists()
    store.close()
    assert not path.exists()


def test_forget_one_function_or_all(tmp_path, monkeypatch):
    path = tmp_path / "p.sqlite3"
    monkeypatch.setattr(_store, "machine_fingerprint", lambda: "another machine")
    elsewhere = ProfileStore.open(path)
    elsewhere.save("f", 0, {"there": 1})
    elsewhere.close()
    monkeypatch.setattr(_store, "machine_fingerprint", machine_fingerprint)
    store = ProfileStore.open(path)
    for key in (("f", 0), ("f", 1), ("g", 0)):
        store.save(*key, {"key": list(key)})
    assert store.flush()
    store.save("f", 2, {"queued": True})
    store.forget("f")
    assert [store.load("f", b) for b in (0, 1, 2)] == [None, None, None]
    assert store.load("g", 0) == {"key": ["g", 0]}
    assert store.flush()
    again = _fresh(path)
    assert [again.load("f", b) for b in (0, 1, 2)] == [None, None, None]
    assert again.load("g", 0) == {"key": ["g", 0]}
    again.forget()
    assert again.load("g", 0) is None
    again.close()
    store.close()
    assert _fresh(path).load("g", 0) is None
    monkeypatch.setattr(_store, "machine_fingerprint", lambda: "another machine")
    assert _fresh(path).load("f", 0) == {"there": 1}  # only this machine's were forgotten


def test_the_oldest_records_go_beyond_the_bound(tmp_path, monkeypatch):
    path = tmp_path / "p.sqlite3"
    monkeypatch.setattr(_store, "MAX_RECORDS", 3)
    monkeypatch.setattr(_store, "machine_fingerprint", lambda: "another machine")
    elsewhere = ProfileStore.open(path)
    for i in range(3):
        elsewhere.save(f"other{i}", 0, {"i": i})
    assert elsewhere.flush()
    elsewhere.close()
    monkeypatch.setattr(_store, "machine_fingerprint", machine_fingerprint)
    store = ProfileStore.open(path)
    for i in range(6):
        store.save(f"f{i}", 0, {"i": i})
        assert store.flush()
    store.close()
    again = _fresh(path)
    assert [i for i in range(6) if again.load(f"f{i}", 0) is not None] == [3, 4, 5]
    again.close()
    monkeypatch.setattr(_store, "machine_fingerprint", lambda: "another machine")
    elsewhere = _fresh(path)
    assert [elsewhere.load(f"other{i}", 0) for i in range(3)] == [{"i": 0}, {"i": 1}, {"i": 2}]
    elsewhere.close()


def test_a_save_is_written_by_the_timer(tmp_path, monkeypatch, no_leaks):
    monkeypatch.setattr(_store, "FLUSH_DELAY_S", 0.01)
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("f", 0, {"n": 1})

    def written() -> bool:
        if not path.exists():
            return False
        with contextlib.closing(sqlite3.connect(path)) as conn:
            try:
                return conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 1
            except sqlite3.OperationalError:  # the table is not there yet
                return False

    wait_until(written, message="the timer never flushed")
    store.save("f", 1, {"n": 2})  # another timer
    store.close()
    again = _fresh(path)
    assert again.load("f", 1) == {"n": 2}
    again.close()


def test_close_flushes_and_later_calls_do_nothing(tmp_path, no_leaks):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("f", 0, {"n": 1})
    store.close()
    assert not store.enabled
    store.save("g", 0, {"n": 2})
    assert store.flush() is True
    store.forget()
    store.close()
    assert store.load("g", 0) is None
    again = _fresh(path)
    assert again.load("f", 0) == {"n": 1}
    assert again.load("g", 0) is None
    again.close()


def test_what_is_queued_at_exit_is_written(tmp_path):
    path = tmp_path / "p.sqlite3"
    script = ("import sys; from multilane.auto._store import ProfileStore; "
              "store = ProfileStore.open(sys.argv[1]); store.save('f', 0, {'at': 'exit'})")
    done = subprocess.run([sys.executable, "-c", script, str(path)], timeout=TIMEOUT,
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    again = _fresh(path)
    assert again.load("f", 0) == {"at": "exit"}
    again.close()


def test_neither_the_timer_nor_the_exit_hook_keeps_a_store_alive(tmp_path):
    store = ProfileStore.open(tmp_path / "p.sqlite3")
    store.save("f", 0, {"n": 1})  # sets a timer, whose thread finds the store gone
    alive = weakref.ref(store)
    del store
    gc.collect()
    assert alive() is None


def test_a_store_closed_before_its_first_load_opens_nothing(tmp_path, no_leaks):
    store = ProfileStore.open(tmp_path / "p.sqlite3")
    store.close()
    assert store.load("f", 0) is None
    assert not (tmp_path / "p.sqlite3").exists()


def test_a_write_that_waits_too_long_for_the_lock_is_dropped(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("before", 0, {"n": 1})
    assert store.flush()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's write, held past the timeout
    try:
        store.save("during", 0, {"n": 2})
        assert store.flush() is False
        assert store.enabled
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.save("after", 0, {"n": 3})
    assert store.flush() is True
    store.close()
    again = _fresh(path)
    assert [again.load(k, 0) for k in ("before", "during", "after")] == [
        {"n": 1}, None, {"n": 3}]
    again.close()


def test_a_table_of_another_schema_is_replaced(tmp_path):
    path = tmp_path / "p.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE profiles (anything)")
        conn.execute("INSERT INTO profiles VALUES ('old')")
        conn.execute("PRAGMA user_version = 99")
        conn.commit()
    store = ProfileStore.open(path)
    assert store.load("f", 0) is None
    store.save("f", 0, {"n": 1})
    assert store.flush()
    store.close()
    assert _fresh(path).load("f", 0) == {"n": 1}
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _store.SCHEMA


# ---------------------------------------------------------------- off, and failing disks


@pytest.mark.parametrize("value", ["0", "off", "FALSE", "No"])
def test_turned_off_by_the_environment(tmp_path, monkeypatch, value):
    monkeypatch.setenv("MULTILANE_PROFILES", value)
    monkeypatch.setenv("MULTILANE_CACHE_DIR", str(tmp_path / "cache"))
    for store in (ProfileStore.open(), ProfileStore.open(tmp_path / "p.sqlite3")):
        assert not store.enabled
        store.save("f", 0, {"n": 1})
        assert store.flush() is True
        assert store.load("f", 0) is None
        store.forget()
        store.close()
    assert os.listdir(tmp_path) == []


def test_a_disabled_store_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = ProfileStore.disabled()
    assert not store.enabled and store.path is None
    store.save("f", 0, {"n": 1})
    assert store.flush() is True
    assert store.load("f", 0) is None
    store.close()
    assert os.listdir(tmp_path) == []


def test_the_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTILANE_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "mine" / f"profiles-v{_store.SCHEMA}.sqlite3"
    monkeypatch.delenv("MULTILANE_CACHE_DIR")
    assert default_path() == tmp_path / "xdg" / "multilane" / f"profiles-v{_store.SCHEMA}.sqlite3"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_path() == (tmp_path / "home" / ".cache" / "multilane"
                              / f"profiles-v{_store.SCHEMA}.sqlite3")
    store = ProfileStore.open()
    assert store.path == default_path()
    store.save("f", 0, {"n": 1})
    assert store.flush()
    store.close()
    assert (tmp_path / "home" / ".cache" / "multilane").stat().st_mode & 0o777 == 0o700


def test_a_folder_that_cannot_be_made(tmp_path):
    (tmp_path / "a file").write_text("")
    path = tmp_path / "a file" / "cache" / "p.sqlite3"
    writer = ProfileStore.open(path)
    writer.save("f", 0, {"n": 1})
    assert writer.flush() is False
    assert not writer.enabled
    writer.save("g", 0, {"n": 1})
    assert writer.flush() is True  # disabled: nothing queued any more
    writer.close()
    reader = ProfileStore.open(path)
    assert reader.load("f", 0) is None
    assert not reader.enabled
    reader.close()


GARBAGE = b"this is not a database, " * 200


def test_a_corrupt_file_behaves_empty_and_is_moved_aside(tmp_path):
    path = tmp_path / "p.sqlite3"
    path.write_bytes(GARBAGE)
    store = ProfileStore.open(path)
    assert store.load("f", 0) is None
    assert not store.enabled
    store.save("f", 0, {"n": 1})
    assert store.flush() is True  # disabled: nothing queued
    store.close()
    assert (tmp_path / "p.sqlite3.corrupt").read_bytes() == GARBAGE
    again = _fresh(path)  # the next run starts afresh
    again.save("f", 0, {"n": 2})
    assert again.flush()
    again.close()
    assert _fresh(path).load("f", 0) == {"n": 2}


def test_a_corrupt_file_another_process_holds_stays(tmp_path):
    """Its lock bytes held shared, as a connection of another process holds them."""
    path = tmp_path / "p.sqlite3"
    path.write_bytes(GARBAGE)
    hold = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.lockf(fd, fcntl.LOCK_SH, 512, 0x40000000); print('held', flush=True); "
            "sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        store = ProfileStore.open(path)
        assert store.load("f", 0) is None
        assert not store.enabled
        store.close()
        assert path.read_bytes() == GARBAGE
        assert not (tmp_path / "p.sqlite3.corrupt").exists()
    finally:
        holder.communicate(timeout=TIMEOUT)


# ---------------------------------------------------------------- processes


def _record(key: str, bucket: int) -> dict:
    return {"function": key, "bucket": bucket, "lane": "process", "work": [bucket, 0.5, key]}


def _writer(path: str, index: int, barrier, results) -> None:
    """One of the processes writing at once: 200 records, a flush every 20; reports the
    keys of the flushes that went through."""
    store = ProfileStore.open(path)
    barrier.wait(TIMEOUT)
    written: list[str] = []
    for batch in range(10):
        keys = [f"p{index}-f{batch * 20 + i}" for i in range(20)]
        for key in keys:
            store.save(key, index, _record(key, index))
        if store.flush():
            written.extend(keys)
    store.close()
    results.put((index, written))


def test_many_processes_writing_at_once(tmp_path):
    path = str(tmp_path / "p.sqlite3")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    writers = [context.Process(target=_writer, args=(path, i, barrier, results))
               for i in range(4)]
    for w in writers:
        w.start()
    try:
        reported = dict(results.get(timeout=TIMEOUT) for _ in writers)
    finally:
        for w in writers:
            w.join(TIMEOUT)
    assert [w.exitcode for w in writers] == [0, 0, 0, 0]
    results.close()
    results.join_thread()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT count(*) FROM profiles").fetchone()[0]
    store = _fresh(path)
    complete = []
    present = 0
    for index in range(4):
        keys = [f"p{index}-f{i}" for i in range(200)]
        found = {key: store.load(key, index) for key in keys}
        present += sum(record is not None for record in found.values())
        for key, record in found.items():
            assert record is None or record == _record(key, index)
        assert all(found[key] is not None for key in reported[index])
        complete.append(all(record is not None for record in found.values()))
    store.close()
    assert present == rows
    assert any(complete)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads running
def test_a_forked_child_leaves_the_parents_connection_alone(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("parent", 0, {"by": "parent"})
    assert store.flush()  # the parent's connection is open
    store.save("queued", 0, {"by": "parent"})  # the parent's to write, not the child's
    assert store.load("parent", 0) == {"by": "parent"}  # the parent's records, read now
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            store.save("child", 0, {"by": "child"})
            seen = store.load("parent", 0)
            code = 0 if store.flush() and seen == {"by": "parent"} else 1
            store.close()
        finally:
            os._exit(code)
    assert gone_within(pid), "the forked child hung"
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert store.load("child", 0) is None  # read before the child wrote
    assert store.flush()
    store.save("later", 0, {"by": "parent"})
    assert store.flush()
    store.close()
    again = _fresh(path)
    assert [again.load(k, 0) for k in ("parent", "queued", "child", "later")] == [
        {"by": "parent"}, {"by": "parent"}, {"by": "child"}, {"by": "parent"}]
    again.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_json_text_is_what_is_stored(tmp_path):
    """The file is plain JSON per row: another tool (or a later schema) can read it."""
    path = tmp_path / "p.sqlite3"
    store = ProfileStore.open(path)
    store.save("f", 3, {"lane": "thread"})
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (text,) = conn.execute("SELECT record FROM profiles WHERE function = 'f' AND bucket = 3"
                               ).fetchone()
    assert json.loads(text) == {"lane": "thread"}
