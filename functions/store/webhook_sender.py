"""POSTs one signed webhook body to the customer's URL; any failure is a reason, never a raise."""

from __future__ import annotations

import urllib.error
import urllib.request


class HttpWebhookSender:
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> str | None:
        request = urllib.request.Request(
            url, data=body, headers=headers | {"User-Agent": "voice-webhooks/1"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return f"no answer: {type(exc).__name__}"
        return None if 200 <= status < 300 else f"status {status}"
