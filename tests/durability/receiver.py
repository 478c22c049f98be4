"""A plain webhook receiver on loopback for the durability tests: the standard library's HTTP
server on a thread of its own, so it keeps answering while a test blocks on the simulator."""

from __future__ import annotations

import http.server
import threading
from typing import Any, Callable


class LoopbackReceiver:
    """Records each delivery's `svix-id` and body, then answers 204. `before_answer` runs on the
    receiver's thread after the body is read and before the answer is sent, so a test can act
    (push, wait) while the simulator is waiting on it."""

    def __init__(self, before_answer: Callable[[], None] | None = None) -> None:
        self.ids: list[str] = []
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.ids.append(self.headers.get("svix-id", ""))
                receiver.bodies.append(body)
                if before_answer is not None:
                    before_answer()
                try:
                    self.send_response(204)
                    self.end_headers()
                except OSError:
                    pass  # the simulator gave up on this attempt already

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
