"""multilane.Pipeline: fetch (async lane, 64 at once) -> parse (process lane) -> write
(thread lane, 8 at once); pages/s."""
import functools
import tempfile

from _http import page_urls, serve
from hybrid._common import per_second
from pipeline_article._stages import DELAY_MS, fetch, parse, write

import multilane


def _indexed_parse(item: tuple[int, bytes]) -> tuple[int, int]:
    return item[0], parse(item[1])


async def _indexed_fetch(item: tuple[int, str]) -> tuple[int, bytes]:
    return item[0], await fetch(item[1])


def _write(folder: str, item: tuple[int, int]) -> str:
    return write(folder, *item)


def run(n: int, runs: int) -> float:
    with serve(DELAY_MS) as base, multilane.Executor() as ex, \
            tempfile.TemporaryDirectory() as folder:
        urls = list(enumerate(page_urls(base, n)))
        pipe = (multilane.Pipeline(ex)
                .map(_indexed_fetch, lane="async", concurrency=64)
                .map(_indexed_parse, lane="process")
                .map(functools.partial(_write, folder), lane="thread", concurrency=8))
        return per_second(lambda: list(pipe.run(urls)), n, runs)
