"""A customer's webhook endpoint: records every delivery, checks its signature, can fail on demand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.local.stack import free_port
from tests.support.servers import ServerThread
from voice.webhooks import SIGNATURE_HEADER, SignatureError, verify


@dataclass
class Delivery:
    body: bytes
    signature: str | None
    signature_ok: bool

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class WebhookReceiver:
    secret: str
    # Answer 500 to this many deliveries before accepting (a broken receiver that recovers).
    fail_first: int = 0
    deliveries: list[Delivery] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get(SIGNATURE_HEADER)
        try:
            verify(self.secret, body, header)
            ok = True
        except SignatureError:
            ok = False
        self.deliveries.append(Delivery(body, header, ok))
        if len(self.deliveries) <= self.fail_first:
            return Response("broken on purpose", status_code=500)
        return Response(status_code=204)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [d.event for d in self.deliveries if event_type in (None, d.event["type"])]

    def accepted(self) -> list[dict[str, Any]]:
        """Deliveries answered 2xx, with duplicates dropped by event id as a receiver should."""
        seen: dict[str, dict[str, Any]] = {}
        for d in self.deliveries[self.fail_first :]:
            seen.setdefault(d.event["id"], d.event)
        return list(seen.values())


class ReceiverServer(ServerThread):
    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        app = Starlette(routes=[Route("/hooks/voice", receiver.hook, methods=["POST"])])
        super().__init__(app, free_port(), name="webhook-receiver")

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hooks/voice"
