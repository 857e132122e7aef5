"""A relay between LiveKit and the API's webhook route that can lose every event on demand."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from infra.local.stack import HOST


class WebhookRelay:
    """Forwards LiveKit's webhook POSTs to `target`; while `lost` is set, acknowledges and drops
    them (LiveKit sees a delivery, the API never does)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.lost = threading.Event()
        self.dropped = 0
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = 200
                if relay.lost.is_set():
                    relay.dropped += 1
                else:
                    status = relay.forward(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def forward(self, body: bytes, headers: dict[str, str]) -> int:
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type")}
        request = urllib.request.Request(self.target, data=body, headers=keep, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 502

    def __enter__(self) -> WebhookRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
