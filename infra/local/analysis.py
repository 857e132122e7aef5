"""The local stack's S3 → SQS → Lambda for post-call analysis: the emulator's reports bucket
notifies the analysis queue of each stored report; this loop runs the Lambda's handler on it."""

from __future__ import annotations

import os
import sys

from functions.background.analysis import analyze_records
from infra.local.outbox import poll_forever


def main() -> int:
    poll_forever(os.environ["ANALYSIS_QUEUE_URL"], analyze_records, "analysing calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
