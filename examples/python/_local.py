"""Shared bits of the examples: import fairsem from the source tree, and a
local HTTP server on 127.0.0.1 standing in for the web pages / the API."""

from __future__ import annotations

import http.server
import sys
import threading
import time
from pathlib import Path

# Run from a checkout without installing: the package is in bindings/python.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

PAGE_SECONDS = 0.1


class _SlowPages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(PAGE_SECONDS)  # a page that takes a while, like a real one
        body = f"<title>page {self.path}</title>".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    # The default backlog of 5 drops connections when 10 slots fetch at
    # once, and a dropped SYN costs the client a 1 s retransmit.
    request_queue_size = 64


def start_server() -> tuple[http.server.ThreadingHTTPServer, str]:
    server = _Server(("127.0.0.1", 0), _SlowPages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
