"""The local stack's SQS → Lambda: polls moto's watchdog queue and runs the Lambda's checks."""

from __future__ import annotations

import os
import sys
from typing import Any

from functions.aio import run_sync
from functions.background.agent_watchdog import run_checks

# Like the queue's visibility timeout in template.yaml: a failed check comes back after this.
RETRY_AFTER_SECONDS = 5


def poll_once(sqs: Any, queue_url: str) -> int:
    """Receives one batch (long poll), runs it, deletes what succeeded; returns how many came."""
    resp = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        VisibilityTimeout=RETRY_AFTER_SECONDS,
    )
    messages = resp.get("Messages", [])
    if not messages:
        return 0
    records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
    failed = {f["itemIdentifier"] for f in run_sync(run_checks(records))["batchItemFailures"]}
    for m in messages:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return len(messages)


def main() -> int:
    import boto3

    queue_url = os.environ["AGENT_WATCHDOG_QUEUE_URL"]
    sqs = boto3.client("sqs")
    print(f"agent watchdog polling {queue_url}", flush=True)
    while True:
        poll_once(sqs, queue_url)


if __name__ == "__main__":
    sys.exit(main())
