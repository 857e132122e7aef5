"""SQS-fed Lambda: analyses each call whose report was stored (S3 ObjectCreated on reports/ →
the analysis queue); a model that does not answer hands the message back for a later try."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

from functions.observability import logger, metrics
from functions.store.errors import StoreError
from functions.wiring import get_container
from voice.chat_json import ModelUnavailable

_PREFIX, _SUFFIX = "reports/", ".json"
_METRIC = {"analyzed": "CallsAnalyzed", "error": "CallAnalysisRejected"}


def reported_sessions(body: str) -> list[str]:
    """The session ids of the reports an S3 event notification announces (none for S3's test
    event or another key)."""
    try:
        event = json.loads(body)
    except ValueError:
        return []
    ids = []
    for record in event.get("Records", []) if isinstance(event, dict) else []:
        key = unquote_plus(str(((record.get("s3") or {}).get("object") or {}).get("key", "")))
        if key.startswith(_PREFIX) and key.endswith(_SUFFIX) and "/" not in key[len(_PREFIX) :]:
            ids.append(key[len(_PREFIX) : -len(_SUFFIX)])
    return ids


def analyze_records(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Analyses the calls of an SQS batch; the answer names the messages to deliver again."""
    analyst = get_container().analyst()
    failures: list[dict[str, str]] = []
    for record in records:
        for session_id in reported_sessions(record["body"]):
            try:
                outcome = analyst.analyze(session_id)
            except (ModelUnavailable, StoreError) as exc:
                logger.warning(
                    "call analysis deferred", extra={"session_id": session_id, "why": str(exc)}
                )
                metrics.add_metric(name="CallAnalysisDeferred", unit="Count", value=1)
                failures.append({"itemIdentifier": record["messageId"]})
                break
            logger.info("call analysis", extra={"session_id": session_id, "outcome": outcome})
            if outcome in _METRIC:
                metrics.add_metric(name=_METRIC[outcome], unit="Count", value=1)
    return {"batchItemFailures": failures}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return analyze_records(event.get("Records", []))
