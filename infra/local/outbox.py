"""The local stack's stand-in for the SQS → Lambda trigger: polls the outbox queue and delivers."""

from __future__ import annotations

import os
import sys
import time

from functions.background.webhook_outbox import deliver_records
from infra.local.aws import local_client


def poll_once(sqs: object, queue_url: str) -> int:
    """One receive, handled as the Lambda would be; returns how many messages it saw."""
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
    failed = {f["itemIdentifier"] for f in deliver_records(records)["batchItemFailures"]}
    for m in messages:
        # Failed ones stay and come back after the visibility timeout, as with the real trigger.
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])  # type: ignore[attr-defined]
    return len(messages)


def main() -> int:
    queue_url = os.environ["WEBHOOK_QUEUE_URL"]
    sqs = local_client("sqs", os.environ["AWS_ENDPOINT_URL"])
    print(f"delivering customer webhooks from {queue_url}", flush=True)
    while True:
        try:
            poll_once(sqs, queue_url)
        except Exception as exc:  # the emulator restarting must not end the loop
            print(f"outbox poll failed: {exc!r}", flush=True)
            time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
