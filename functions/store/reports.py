"""Reads the usage summary from the worker's session report in S3 (see `voice.report`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from functions.observability import logger
from functions.store.errors import StoreUnavailable
from voice.aws_budget import BudgetSpent, budgeted
from voice.report import SessionReport, report_key


class ReportStore:
    def __init__(self, bucket: str | None, client: Any = None) -> None:
        self._bucket = bucket
        self._client = client

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # deferred: only reads of ended sessions need S3
            from botocore.config import Config

            # SigV4: presigned recording URLs carry an expiry S3 enforces in every region. Short
            # attempts within the request's AWS budget: a stalled bucket costs a read of an
            # ended session its usage figures, not the response.
            self._client = budgeted(
                boto3.client(
                    "s3",
                    config=Config(
                        signature_version="s3v4",
                        connect_timeout=1,
                        read_timeout=2,
                        retries={"mode": "standard", "max_attempts": 2},
                    ),
                )
            )
        return self._client

    def report(self, session_id: str) -> SessionReport | None:
        """The worker's report, or None when there is no (readable) report yet."""
        if not self._bucket:
            return None
        try:
            obj = self._s3().get_object(Bucket=self._bucket, Key=report_key(session_id))
            return SessionReport.model_validate_json(obj["Body"].read())
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("NoSuchKey", "404", "AccessDenied"):
                logger.warning("session report unreadable", extra={"session_id": session_id})
            return None
        except (BotoCoreError, BudgetSpent, ValidationError, ValueError) as exc:
            logger.warning(
                "session report unreadable",
                extra={"session_id": session_id, "why": type(exc).__name__},
            )
            return None

    def recording_url(self, key: str, ttl_seconds: int) -> str | None:
        """A presigned GET for a recording in the reports bucket (signed locally, no request)."""
        if not self._bucket:
            return None
        try:
            url: str = self._s3().generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=ttl_seconds
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(
                f"could not sign the recording URL ({type(exc).__name__})"
            ) from exc
        return url

    def usage(self, session_id: str) -> dict[str, Any] | None:
        """The report's usage and turn count, or None when there is no (readable) report yet."""
        report = self.report(session_id)
        if report is None:
            return None
        return report.usage.model_dump() | {"turns": len(report.turns)}
