"""The customer-webhook outbox in template.yaml: queue, DLQ, alarm, trigger and least privilege."""

from __future__ import annotations

from typing import Any

import pytest

from infra.template import load_template
from tests.infra.test_template import as_list, iam_statements


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def statements_with(template: dict[str, Any], action: str) -> dict[str, list[Any]]:
    """Who may do `action`, and on which resources."""
    found: dict[str, list[Any]] = {}
    for name, statement in iam_statements(template):
        if action in as_list(statement["Action"]):
            found.setdefault(name, []).extend(as_list(statement["Resource"]))
    return found


def test_the_outbox_queue_parks_what_it_cannot_handle_in_a_dlq_that_alarms(template):
    res = template["Resources"]
    queue = res["WebhookQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]
    }
    # The trigger wants six times the function timeout, or messages are handled twice.
    assert queue["VisibilityTimeout"] >= 6 * res["WebhookFunction"]["Properties"]["Timeout"]
    alarm = res["WebhookDeadLettersAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["WebhookDeadLetterQueue", "QueueName"]
    }
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_delivery_function_is_triggered_by_the_queue_and_reports_partial_failures(template):
    fn = template["Resources"]["WebhookFunction"]["Properties"]
    (event,) = fn["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert fn["Handler"] == "functions.background.webhook_outbox.handler"


def test_only_the_delivery_function_reads_the_signing_secret(template):
    readers = statements_with(template, "secretsmanager:GetSecretValue")
    holders = [n for n, res in readers.items() if {"Ref": "WebhookSecretArn"} in res]
    assert holders == ["WebhookFunction"]
    assert "Default" in template["Parameters"]["WebhookSecretArn"]
    assert template["Parameters"]["WebhookSecretArn"]["Default"] == ""


def test_sending_to_the_outbox_is_scoped_to_its_queues(template):
    senders = statements_with(template, "sqs:SendMessage")
    outbox = {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
    dlq = {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    # The API and the reaper end sessions (they emit); only the delivery function dead-letters.
    for name in ("ApiFunction", "ReaperFunction"):
        assert outbox in senders[name], name
        assert dlq not in senders[name], name
    assert senders["WebhookFunction"] == [outbox, dlq]
