"""A threaded HTTP server on 127.0.0.1 for fixture services: ``handle(path, params)`` returns
(status, content type, body), or None to close the connection without a reply."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlparse

Reply = tuple[int, str, bytes] | None


class LoopbackServer:
    def __init__(self, handle: Callable[[str, dict], Reply]):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                reply = handle(url.path, {k: v[-1] for k, v in parse_qs(url.query).items()})
                if reply is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                status, ctype, payload = reply
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
