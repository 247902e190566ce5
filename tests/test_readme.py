"""The README cannot lie: every ```python block of README.md runs, each as its own test.

How a block runs (``test_readme_block``):

- Each block is found by its fence and named by its line and heading
  (``L85-large-arrays-without-a-single-copy``); it runs alone, in a fresh namespace, as
  ``__main__`` (so its lambdas and functions pickle as a script's would), compiled under
  README.md's own path and line numbers, so a traceback points at the README line.
- Names the README uses without defining them (``crunch``, ``data``, ``url``, ``urls``,
  ``download``, ``fetch_async``...) are small, fast stand-ins from tests/_readme_standins.py,
  module-level functions so process workers load them by name. ``url`` and ``urls`` point
  at a loopback HTTP server (127.0.0.1, an ephemeral port) that the test starts and stops:
  no network beyond it. Modules are not stand-ins: a block imports what it uses.
- Sizes too large for a test are scaled down by the explicit table ``SUBSTITUTIONS``. An
  entry that no longer matches the README's text fails
  ``test_every_substitution_still_matches_the_readme``, and every block refuses to run
  (the changed block might otherwise run unscaled): the table cannot rot silently.
- A block that defines a coroutine function ``main`` and never calls it is exercised all
  the same: the test runs ``asyncio.run(main())`` after the block.
- A future the block leaves in its namespace must not have failed (one it cancelled may
  have been cancelled).
- ``no_leaks`` checks that nothing outlives the block: no process, thread, descriptor.
  The process-wide default executor (``@multilane.task`` calls) is shut down after each
  block, and the zero-copy arena lets go of its free blocks.

Only ```python blocks run (```sh and others do not). A Python block that is deliberately
not runnable carries ``<!-- readme-test: skip (reason) -->`` on the line before its fence;
it is listed as skipped with that reason. Keep those to none if at all possible. A block
that needs an optional extra carries ``<!-- readme-test: needs (module ...) -->``: it runs
wherever those modules are installed (the main venv) and is skipped elsewhere.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import gc
import importlib.util
import inspect
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import _readme_standins as standins
import numpy  # noqa: F401 -- its import starts OpenBLAS's threads for good: before no_leaks
import pytest
from conftest import TIMEOUT

import multilane
from multilane import _core

README = Path(__file__).resolve().parent.parent / "README.md"
RUNNABLE = {"python", "py", "python3"}
FENCE = re.compile(r"^(```+|~~~+)\s*([^\s`]*)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
SKIP = re.compile(r"^<!--\s*readme-test:\s*(skip|needs)\s*\((.+)\)\s*-->\s*$")
MARKER = re.compile(r"<!--\s*readme-test")

# README text -> what the test runs instead, and why. Each entry must still match some
# Python block of the README (checked below); a replacement stays on its line.
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    ("np.random.rand(16384, 8192)", "np.random.rand(1024, 256)",
     "the 1 GB array becomes 2 MiB: still above zero_copy's 1 MiB threshold, so it is "
     "made in shared memory and sent uncopied, as in the README"),
]


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence; the code starts on the next line
    heading: str
    language: str
    code: str
    skip: str | None  # the reason given by a skip marker, None when the block runs

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"L{self.line}-{slug or 'top'}"


def parse(text: str) -> tuple[list[Block], list[int]]:
    """Every fenced block of ``text``, and the lines of skip markers that precede no
    Python fence (stale or misplaced)."""
    blocks: list[Block] = []
    stray_markers: list[int] = []
    lines = text.splitlines()
    heading = ""
    pending: tuple[int, str | None] | None = None  # (line, reason) of the last marker
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            opener, language = fence.group(1), fence.group(2).lower()
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith(opener):
                body.append(lines[i])
                i += 1
            reason = None
            if pending is not None:
                if language in RUNNABLE:
                    reason = pending[1]
                else:
                    stray_markers.append(pending[0])
                pending = None
            blocks.append(Block(start + 1, heading, language, "\n".join(body) + "\n", reason))
        elif MARKER.search(line):
            if pending is not None:
                stray_markers.append(pending[0])
            skip = SKIP.match(line.strip())
            pending = (i + 1, _reason(skip.group(1), skip.group(2).strip()) if skip else None)
            if skip is None:  # a malformed marker is reported, never silently ignored
                stray_markers.append(i + 1)
                pending = None
        elif line.strip():
            if pending is not None:  # the marker must be right before the fence
                stray_markers.append(pending[0])
                pending = None
            match = HEADING.match(line)
            if match:
                heading = match.group(1)
        i += 1
    if pending is not None:
        stray_markers.append(pending[0])
    return blocks, stray_markers


def _reason(kind: str, text: str) -> str | None:
    """Why a block is skipped: ``skip (reason)`` always; ``needs (modules)`` only where one
    of those optional modules is not installed (the README's extras)."""
    if kind == "skip":
        return text
    missing = [name for name in text.split() if importlib.util.find_spec(name) is None]
    return f"needs {', '.join(missing)}, not installed here" if missing else None


BLOCKS, STRAY_MARKERS = parse(README.read_text())
PYTHON_BLOCKS = [block for block in BLOCKS if block.language in RUNNABLE]


def stale_substitutions() -> list[str]:
    """The substitutions that match no Python block of the README any more."""
    return [old for old, _, _ in SUBSTITUTIONS
            if not any(old in block.code for block in PYTHON_BLOCKS)]


def substituted(code: str) -> str:
    for old, new, _ in SUBSTITUTIONS:
        code = code.replace(old, new)
    return code


def calls(code: str, name: str) -> bool:
    """True if ``code`` calls ``name(...)`` anywhere."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id == name for node in ast.walk(ast.parse(code)))


@pytest.fixture
def loopback(no_leaks):
    """Base URL of a page server on 127.0.0.1; stopped, with its threads, before
    ``no_leaks`` looks."""
    server = standins.PageServer(("127.0.0.1", 0), standins.PageHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                              name="readme-loopback")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()  # joins the request threads
        thread.join(TIMEOUT)


def _params() -> list:
    return [pytest.param(block, id=block.id,
                         marks=[pytest.mark.skip(reason=block.skip)] if block.skip else [])
            for block in PYTHON_BLOCKS]


def execute(code: str, line: int, namespace: dict) -> None:
    """Runs ``code`` (a block's, from README.md line ``line``) in ``namespace``; then its
    ``main`` coroutine function if it defines one and never calls it; then checks the
    futures it left behind."""
    # Under README.md's name and line numbers: a traceback points at the README line.
    tree = ast.increment_lineno(ast.parse(code), line)
    exec(compile(tree, str(README), "exec"), namespace)
    main = namespace.get("main")
    if inspect.iscoroutinefunction(main) and not calls(code, "main"):
        asyncio.run(main())
    for name, value in namespace.items():
        if isinstance(value, Future) and value.done() and not value.cancelled():
            error = value.exception()
            assert error is None, f"README line {line}: future {name} failed: {error!r}"


@pytest.mark.parametrize("block", _params())
def test_readme_block(block: Block, loopback: str) -> None:
    """Runs one README block (see the module docstring): a ``main`` coroutine function
    the block defines but never calls is run with ``asyncio.run`` after it."""
    # A stale entry was written for a block whose text changed: which one is unknown, and
    # running it unscaled (a 1 GB array...) is what the table is there to prevent.
    assert not stale_substitutions(), (
        f"README.md no longer contains {stale_substitutions()}: fix SUBSTITUTIONS first")
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins,
                       **standins.namespace(loopback)}
    try:
        execute(substituted(block.code), block.line, namespace)
    finally:
        namespace.clear()
        gc.collect()
        multilane.default_executor().shutdown(wait=True)  # what @task calls started
        _core.arena_trim()  # freed zero-copy blocks kept for reuse are no leak


def test_the_readme_has_python_blocks_and_no_stray_markers() -> None:
    assert PYTHON_BLOCKS, "no ```python block found in README.md"
    assert not STRAY_MARKERS, (
        f"README.md lines {STRAY_MARKERS}: a readme-test marker must read "
        "'<!-- readme-test: skip (reason) -->' on the line right before a ```python fence")


def test_every_substitution_still_matches_the_readme() -> None:
    for old, new, why in SUBSTITUTIONS:
        assert "\n" not in old and "\n" not in new, f"{old!r}: a substitution stays on its line"
        assert old not in stale_substitutions(), (
            f"the substitution {old!r} -> {new!r} ({why}) no longer matches any "
            "```python block of README.md: update or remove it")


def test_every_stand_in_is_used_by_the_readme() -> None:
    used = {node.id for block in PYTHON_BLOCKS if not block.skip
            for node in ast.walk(ast.parse(block.code)) if isinstance(node, ast.Name)}
    unused = set(standins.namespace("http://127.0.0.1:1")) - used
    assert not unused, f"stand-ins no README block uses any more: {sorted(unused)}"


# ---------------------------------------------------------------- the machinery itself


def test_parse_names_blocks_and_honours_skip_markers() -> None:
    text = ("# Title\n\n```sh\nmake test\n```\n\n## Some section\n\n"
            "<!-- readme-test: skip (needs a GPU) -->\n```python\nimport torch\n```\n\n"
            "```python\nx = 1\n```\n\n<!-- readme-test: skip (stale) -->\n\nprose\n")
    blocks, stray = parse(text)
    assert [(b.line, b.language, b.skip) for b in blocks] == [
        (3, "sh", None), (10, "python", "needs a GPU"), (14, "python", None)]
    assert blocks[1].id == "L10-some-section" and blocks[2].code == "x = 1\n"
    assert stray == [18]
    assert parse("<!-- readme-test: skip -->\n```python\npass\n```\n")[1] == [1]
    needs = ("<!-- readme-test: needs (json no_such_module_here) -->\n```python\npass\n```\n"
             "<!-- readme-test: needs (json) -->\n```python\npass\n```\n")
    assert [b.skip for b in parse(needs)[0]] == [
        "needs no_such_module_here, not installed here", None]


def test_a_main_the_block_never_calls_is_run_and_one_it_calls_is_not() -> None:
    ran: list[str] = []
    block = "async def main():\n    ran.append('main')\n"
    execute(block, 0, {"__builtins__": builtins, "ran": ran})
    assert ran == ["main"]
    execute(block + "import asyncio\nasyncio.run(main())\n", 0,
            {"__builtins__": builtins, "ran": ran})
    assert ran == ["main", "main"]


def test_a_failed_future_left_by_a_block_fails_it() -> None:
    with pytest.raises(AssertionError, match="future f failed"):
        execute("from concurrent.futures import Future\nf = Future()\n"
                "f.set_exception(ValueError())\n", 0, {"__builtins__": builtins})
