"""The local stack's stand-in for the SQS → Lambda trigger: polls the outbox queue and delivers."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from functions.background.webhook_outbox import deliver_records
from infra.local.aws import local_client

Handler = Callable[[list[dict[str, Any]]], dict[str, Any]]


def poll_once(sqs: object, queue_url: str, handle: Handler = deliver_records) -> int:
    """One receive, handled as the Lambda `handle` would be; returns how many messages it saw."""
    resp = sqs.receive_message(  # type: ignore[attr-defined]
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    messages = resp.get("Messages", [])
    if not messages:
        return 0
    records = [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
        for m in messages
    ]
    failed = {f["itemIdentifier"] for f in handle(records)["batchItemFailures"]}
    for m in messages:
        # Failed ones stay and come back after the visibility timeout, as with the real trigger.
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])  # type: ignore[attr-defined]
    return len(messages)


def poll_forever(queue_url: str, handle: Handler, what: str) -> None:
    sqs = local_client("sqs", os.environ["AWS_ENDPOINT_URL"])
    print(f"{what} from {queue_url}", flush=True)
    while True:
        try:
            poll_once(sqs, queue_url, handle)
        except Exception as exc:  # the emulator restarting must not end the loop
            print(f"{what}: poll failed: {type(exc).__name__}", flush=True)
            time.sleep(1)


def main() -> int:
    poll_forever(os.environ["WEBHOOK_QUEUE_URL"], deliver_records, "delivering customer webhooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
