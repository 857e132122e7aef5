"""The local AWS emulator (moto server) with the table, config bucket and parameters of the stack."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from infra.local.paths import CONFIG_FILE
from infra.template import create_sessions_table

LOCAL_TABLE = "voice-sessions"
LOCAL_CONFIG_BUCKET = "voice-config-local"
LOCAL_REPORTS_BUCKET = "voice-reports-local"
CONFIG_KEY = "voice_config.yaml"
CONFIG_URI_PARAMETER = "/voice/config-uri"
WATCHDOG_QUEUE = "voice-agent-watchdog-local"
LOCAL_WEBHOOK_QUEUE = "voice-webhooks-local"
LOCAL_WEBHOOK_DLQ = "voice-webhooks-dlq-local"
LOCAL_ANALYSIS_QUEUE = "voice-analysis-local"
LOCAL_ANALYSIS_DLQ = "voice-analysis-dlq-local"
# moto's default account: queue URLs are <endpoint>/<account>/<name>.
LOCAL_ACCOUNT = "123456789012"
REGION = "us-east-1"
# The emulator takes any credentials; fixed ones keep a developer's real AWS profile out of it.
LOCAL_CREDENTIAL = "local"


def local_aws_env(endpoint: str) -> dict[str, str]:
    """Environment that points boto3 (and so every piece of the stack) at the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIAL,
        "SESSIONS_TABLE": LOCAL_TABLE,
        "REPORTS_BUCKET": LOCAL_REPORTS_BUCKET,
        "AGENT_WATCHDOG_QUEUE_URL": watchdog_queue_url(endpoint),
        "WEBHOOK_QUEUE_URL": f"{endpoint}/{LOCAL_ACCOUNT}/{LOCAL_WEBHOOK_QUEUE}",
        "WEBHOOK_DLQ_URL": f"{endpoint}/{LOCAL_ACCOUNT}/{LOCAL_WEBHOOK_DLQ}",
        "ANALYSIS_QUEUE_URL": f"{endpoint}/{LOCAL_ACCOUNT}/{LOCAL_ANALYSIS_QUEUE}",
    }


def watchdog_queue_url(endpoint: str) -> str:
    return f"{endpoint}/{LOCAL_ACCOUNT}/{WATCHDOG_QUEUE}"


def local_client(service: str, endpoint: str) -> Any:
    """A boto3 client for `service` on the emulator at `endpoint`, whatever the environment says."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_CREDENTIAL,
        aws_secret_access_key=LOCAL_CREDENTIAL,
    )


def bootstrap(endpoint: str) -> None:
    """Creates what template.yaml would: the sessions table, the buckets, the config parameter and
    the agent watchdog's queue."""
    ddb = local_client("dynamodb", endpoint)
    if LOCAL_TABLE not in ddb.list_tables()["TableNames"]:
        create_sessions_table(ddb, LOCAL_TABLE)
    s3 = local_client("s3", endpoint)
    for bucket in (LOCAL_CONFIG_BUCKET, LOCAL_REPORTS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=LOCAL_CONFIG_BUCKET, Key=CONFIG_KEY, Body=CONFIG_FILE.read_bytes())
    url = local_client("sqs", endpoint).create_queue(QueueName=WATCHDOG_QUEUE)["QueueUrl"]
    if url != watchdog_queue_url(endpoint):
        raise RuntimeError(f"the emulator named the watchdog queue {url}, not the expected URL")
    create_webhook_queues(local_client("sqs", endpoint))
    create_analysis_trigger(local_client("sqs", endpoint), s3)
    local_client("ssm", endpoint).put_parameter(
        Name=CONFIG_URI_PARAMETER,
        Value=f"s3://{LOCAL_CONFIG_BUCKET}/{CONFIG_KEY}",
        Type="String",
        Overwrite=True,
    )


def create_webhook_queues(sqs: Any) -> None:
    """The outbox queue and its DLQ, as in template.yaml (a short visibility timeout locally)."""
    dlq = sqs.create_queue(QueueName=LOCAL_WEBHOOK_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName=LOCAL_WEBHOOK_QUEUE,
        Attributes={
            "VisibilityTimeout": "10",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"5"}}',
        },
    )


def create_analysis_trigger(sqs: Any, s3: Any, bucket: str = LOCAL_REPORTS_BUCKET) -> str:
    """As in template.yaml: each report stored under reports/ notifies the analysis queue (its
    URL is returned)."""
    dlq = sqs.create_queue(QueueName=LOCAL_ANALYSIS_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=LOCAL_ANALYSIS_QUEUE,
        Attributes={
            "VisibilityTimeout": "10",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}',
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "reports/"},
                                {"Name": "suffix", "Value": ".json"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    return str(queue)


def start_moto(port: int = 0) -> tuple[Any, str]:
    import logging

    from moto.server import ThreadedMotoServer

    from infra.local.moto_fidelity import serialize_dynamodb

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serialize_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.aws")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT", "4566")))
    args = parser.parse_args(argv)
    server, endpoint = start_moto(args.port)
    bootstrap(endpoint)
    print(
        f"AWS emulator on {endpoint}: table {LOCAL_TABLE}, buckets and parameters ready", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
