"""Reads the usage summary from the worker's session report in S3 (reports/<session_id>.json)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.observability import logger


class ReportStore:
    def __init__(self, bucket: str | None, client: Any = None) -> None:
        self._bucket = bucket
        self._client = client

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # deferred: only reads of ended sessions need S3

            self._client = boto3.client("s3")
        return self._client

    def usage(self, session_id: str) -> dict[str, Any] | None:
        """The report's usage and turn count, or None when there is no (readable) report yet."""
        if not self._bucket:
            return None
        try:
            obj = self._s3().get_object(Bucket=self._bucket, Key=f"reports/{session_id}.json")
            report = json.loads(obj["Body"].read())
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("NoSuchKey", "404", "AccessDenied"):
                logger.warning("session report unreadable", extra={"session_id": session_id})
            return None
        except (BotoCoreError, ValueError):
            logger.warning("session report unreadable", extra={"session_id": session_id})
            return None
        usage = report.get("usage") if isinstance(report, dict) else None
        if not isinstance(usage, dict):
            return None
        turns = report.get("turns")
        return usage | {"turns": len(turns) if isinstance(turns, list) else None}
