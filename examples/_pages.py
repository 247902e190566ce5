"""A small HTTP server on 127.0.0.1 for the examples: ``GET /N`` answers ``page(N)`` after
a delay (a slow server: waiting dominates a download)."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def serving(page: Callable[[int], str], delay_s: float) -> Iterator[str]:
    """Serves ``page(N)`` at ``/N``; yields the base URL, and stops the server after."""

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- the http.server API
            body = page(int(self.path.rsplit("/", 1)[-1] or 0)).encode()
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256  # the default 5 drops connections: clients retry after 1 s
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
