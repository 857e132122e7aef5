"""API Gateway HTTP API (v2) events sent through the real Mangum handler."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class LambdaContext:
    function_name: str = "voice-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:voice-api"
    aws_request_id: str = "req-1"


def http_api_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
    query: str = "",
) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    is_binary = isinstance(body, bytes)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "api.example.com", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": f"req-{uuid.uuid4()}",
            "routeKey": "$default",
            "stage": "$default",
            "time": "29/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795910400000,
        },
        "body": (base64.b64encode(body).decode() if is_binary else body),
        "isBase64Encoded": is_binary,
    }


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def invoke(method: str, path: str, **kwargs: Any) -> Reply:
    from functions.api.handler import handler

    if "json" in kwargs:
        kwargs["body"] = json.dumps(kwargs.pop("json"))
    resp = handler(http_api_event(method, path, **kwargs), LambdaContext())
    raw = resp.get("body") or ""
    if resp.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    try:
        parsed = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        parsed = raw
    return Reply(resp["statusCode"], parsed, resp.get("headers", {}))
