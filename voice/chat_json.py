"""One JSON answer from an OpenAI-compatible chat model (the analyst, the name redactor): a
timeout per request, a few attempts, and no text of the request or answer in any error."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from voice.config.analysis import ModelCall

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Between attempts; the n-th retry waits n times this.
RETRY_PAUSE_SECONDS = 0.5


class ModelUnavailable(RuntimeError):
    """The model gave no usable answer after every attempt; the message says why, without content."""


def base_url_of(call: ModelCall, env: dict[str, str] | None = None) -> str:
    env = dict(os.environ if env is None else env)
    return (call.base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def chat_json(
    call: ModelCall,
    messages: list[dict[str, str]],
    schema_name: str,
    schema: dict[str, Any],
    *,
    api_key: str | None,
    env: dict[str, str] | None = None,
) -> str:
    """The model's answer (the message content; the caller parses and checks it).

    Asks for structured output against `schema`; retries only what a retry can fix (no answer,
    429, 5xx); raises `ModelUnavailable` when every attempt failed."""
    body = json.dumps(
        {
            "model": call.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": False},
            },
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = f"{base_url_of(call, env)}/chat/completions"
    why = "not tried"
    for attempt in range(1, call.max_attempts + 1):
        if attempt > 1:
            time.sleep(RETRY_PAUSE_SECONDS * (attempt - 1))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=call.timeout_seconds) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            why = f"status {exc.code}"
            if exc.code != 429 and exc.code < 500:
                break  # a bad request or key: the same request fails again
            continue
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            why = f"no answer: {type(exc).__name__}"
            continue
        except ValueError:
            why = "the answer is not JSON"
            continue
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            why = "the answer holds no message"
            continue
        if isinstance(content, str):
            return content
        why = "the answer's message is not text"
    raise ModelUnavailable(f"model {call.model} at {url}: {why} after {attempt} attempt(s)")
