"""Properties of template.yaml that cfn-lint and sam validate cannot see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.template import create_sessions_table, load_template, table_create_kwargs
from voice.agents import VERSION_PROJECTION
from voice.table import SESSION_VERSION_PROJECTION, Heartbeat

NOW = datetime(2026, 12, 5, tzinfo=UTC)

# PSS (what the job memory limit is checked against) measured by bench/worker_memory.py with
# LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE=0: worker main process, forkserver, one idle job process.
WORKER_MAIN_MB = 155
FORKSERVER_MB = 55
IDLE_JOB_PROCESS_MB = 90
# bench/load.py: CPU of the worker's process tree per live call; a task runs at most 75% busy.
CPU_CORES_PER_CALL = 0.224
CPU_TARGET = 0.75
# Below this a job process cannot hold a call (idle PSS is 70 MB; a call adds audio buffers).
MIN_JOB_LIMIT_MB = 250
# Fargate cpu -> memory pairs (MB) that the template's WorkerMemory values can take.
FARGATE_MEMORY_FOR_CPU = {
    512: {1024, 2048, 3072, 4096},
    1024: {2048, 3072, 4096, 5120, 6144, 7168, 8192},
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}
# Actions with no resource-level permissions, so "*" is the only possible resource.
# Actions IAM authorises on "*" only (no resource-level permissions exist for them).
RESOURCELESS_ACTIONS = {"ecr:GetAuthorizationToken", "xray:PutTraceSegments"}
REQUIRED_SECRET_PARAMETERS = {"LiveKitApiSecretArn", "OpenAIApiKeySecretArn"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def parameter_values(template: dict[str, Any], name: str) -> list[int]:
    return [int(v) for v in template["Parameters"][name]["AllowedValues"]]


def worker_container(template: dict[str, Any]) -> dict[str, Any]:
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return container


def container_env(template: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in worker_container(template)["Environment"]}


def branches(node: Any) -> Iterator[Any]:
    """Every concrete value a node may take, following both sides of each Fn::If."""
    if isinstance(node, dict) and "Fn::If" in node:
        _, yes, no = node["Fn::If"]
        yield from branches(yes)
        yield from branches(no)
    elif node == {"Ref": "AWS::NoValue"}:
        return
    else:
        yield node


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        documents: list[Any] = []
        if res["Type"] == "AWS::Serverless::Function":
            documents = [p for p in props.get("Policies", []) if isinstance(p, dict)]
        elif res["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
            if "PolicyDocument" in props:
                documents.append(props["PolicyDocument"])
        for doc in documents:
            for raw in as_list(doc.get("Statement", [])):
                for statement in branches(raw):
                    yield name, statement


# ---------------------------------------------------------------- memory arithmetic


def test_every_task_memory_has_a_reservation_under_the_hard_limit(template):
    reservations = template["Mappings"]["WorkerMemoryReservation"]
    for memory in parameter_values(template, "WorkerMemory"):
        reservation = reservations[str(memory)]["Mb"]
        assert 0 < reservation <= memory, memory


def test_worker_processes_fit_in_the_reservation_for_every_size_and_job_count(template):
    maps = template["Mappings"]
    for memory in parameter_values(template, "WorkerMemory"):
        reservation = maps["WorkerMemoryReservation"][str(memory)]["Mb"]
        for jobs in parameter_values(template, "WorkerMaxJobs"):
            limit = maps["WorkerJobMemoryLimit"][str(memory)][str(jobs)]
            warn = maps["WorkerJobMemoryWarn"][str(memory)][str(jobs)]
            used = WORKER_MAIN_MB + FORKSERVER_MB + IDLE_JOB_PROCESS_MB + jobs * limit
            assert used <= reservation <= memory, (memory, jobs, used)
            assert 0 < warn < limit, (memory, jobs)


def allowed_jobs_by_rule(template, parameter: str, value: int) -> set[int] | None:
    for rule in template["Rules"].values():
        if rule.get("RuleCondition") == {"Fn::Equals": [{"Ref": parameter}, str(value)]}:
            for assertion in rule["Assertions"]:
                values, ref = assertion["Assert"].get("Fn::Contains", [None, None])
                if ref == {"Ref": "WorkerMaxJobs"}:
                    return {int(v) for v in values}
    return None


def test_job_counts_that_leave_too_little_memory_per_job_are_refused_by_a_rule(template):
    maps = template["Mappings"]["WorkerJobMemoryLimit"]
    for memory in parameter_values(template, "WorkerMemory"):
        too_many = {
            jobs
            for jobs in parameter_values(template, "WorkerMaxJobs")
            if maps[str(memory)][str(jobs)] < MIN_JOB_LIMIT_MB
        }
        if not too_many:
            continue
        allowed = allowed_jobs_by_rule(template, "WorkerMemory", memory)
        assert allowed is not None, f"no rule limits WorkerMaxJobs for {memory} MB"
        assert not allowed & too_many, (memory, allowed & too_many)


def test_job_counts_the_task_cpu_cannot_carry_are_refused_by_a_rule(template):
    for cpu in parameter_values(template, "WorkerCpu"):
        most = int(cpu / 1024 * CPU_TARGET / CPU_CORES_PER_CALL + 1e-9)
        allowed = allowed_jobs_by_rule(template, "WorkerCpu", cpu)
        assert allowed == set(range(1, most + 1)), (cpu, most, allowed)
    assert max(parameter_values(template, "WorkerMaxJobs")) == int(
        4096 / 1024 * CPU_TARGET / CPU_CORES_PER_CALL + 1e-9
    )


def test_the_default_task_takes_the_calls_its_cpu_and_memory_carry(template):
    params = template["Parameters"]
    cpu, memory = int(params["WorkerCpu"]["Default"]), int(params["WorkerMemory"]["Default"])
    jobs = int(params["WorkerMaxJobs"]["Default"])
    assert jobs in allowed_jobs_by_rule(template, "WorkerCpu", cpu)
    limit = template["Mappings"]["WorkerJobMemoryLimit"][str(memory)][str(jobs)]
    assert limit >= MIN_JOB_LIMIT_MB
    # Scale out before the tasks are full: a new call finds a slot while a task starts.
    assert 1 <= int(params["WorkerTargetActiveJobs"]["Default"]) < jobs


def test_container_takes_memory_and_job_limits_from_the_mappings(template):
    container = worker_container(template)
    env = container_env(template)
    assert container["Memory"] == {"Ref": "WorkerMemory"}
    assert container["MemoryReservation"] == {
        "Fn::FindInMap": ["WorkerMemoryReservation", {"Ref": "WorkerMemory"}, "Mb"]
    }
    by_size_and_jobs = [{"Ref": "WorkerMemory"}, {"Ref": "WorkerMaxJobs"}]
    assert env["OPENAGENTS_LIVEKIT_JOB_MEMORY_LIMIT_MB"] == {
        "Fn::FindInMap": ["WorkerJobMemoryLimit", *by_size_and_jobs]
    }
    assert env["OPENAGENTS_LIVEKIT_JOB_MEMORY_WARN_MB"] == {
        "Fn::FindInMap": ["WorkerJobMemoryWarn", *by_size_and_jobs]
    }
    assert env["OPENAGENTS_LIVEKIT_MAX_JOBS"] == {"Ref": "WorkerMaxJobs"}
    # No idle count: the worker keeps one warm process per slot (worker.server.idle_processes).
    assert "OPENAGENTS_LIVEKIT_NUM_IDLE_PROCESSES" not in env
    assert env["LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE"] == "0"


def test_default_cpu_and_memory_are_a_valid_fargate_pair(template):
    params = template["Parameters"]
    cpu, memory = int(params["WorkerCpu"]["Default"]), int(params["WorkerMemory"]["Default"])
    assert memory in FARGATE_MEMORY_FOR_CPU[cpu]


def test_rules_allow_only_fargate_cpu_memory_pairs(template):
    memories = set(parameter_values(template, "WorkerMemory"))
    for cpu in parameter_values(template, "WorkerCpu"):
        allowed = set(memories)
        for rule in template["Rules"].values():
            if rule.get("RuleCondition") != {"Fn::Equals": [{"Ref": "WorkerCpu"}, str(cpu)]}:
                continue
            for assertion in rule["Assertions"]:
                check = assertion["Assert"]
                if "Fn::Contains" in check:
                    values, ref = check["Fn::Contains"]
                    if ref == {"Ref": "WorkerMemory"}:  # the job-count rules are not about pairs
                        allowed &= {int(v) for v in values}
                else:
                    allowed &= {int(check["Fn::Equals"][1])}
        assert allowed, cpu
        assert allowed <= FARGATE_MEMORY_FOR_CPU[cpu], (cpu, allowed - FARGATE_MEMORY_FOR_CPU[cpu])


# ---------------------------------------------------------------- worker task and service


def test_worker_drains_within_a_120_second_stop_timeout(template):
    assert worker_container(template)["StopTimeout"] == 120


def test_health_check_probes_the_worker_health_port(template):
    env = container_env(template)
    port = env["OPENAGENTS_LIVEKIT_WORKER_PORT"]
    command = " ".join(worker_container(template)["HealthCheck"]["Command"])
    assert f"127.0.0.1:{port}/" in command


def test_worker_logs_go_to_the_stack_log_group(template):
    logging = worker_container(template)["LogConfiguration"]
    assert logging["LogDriver"] == "awslogs"
    assert logging["Options"]["awslogs-group"] == {"Ref": "WorkerLogGroup"}


def test_service_rolls_back_bad_deploys_and_keeps_the_fleet_at_full_strength(template):
    (service,) = resources(template, "AWS::ECS::Service").values()
    deployment = service["Properties"]["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert deployment["MinimumHealthyPercent"] == 100


def test_service_runs_on_the_chosen_fargate_capacity_provider(template):
    (service,) = resources(template, "AWS::ECS::Service").values()
    strategy = service["Properties"]["CapacityProviderStrategy"]
    assert strategy == [{"CapacityProvider": {"Ref": "WorkerCapacityProvider"}, "Weight": 1}]
    assert set(template["Parameters"]["WorkerCapacityProvider"]["AllowedValues"]) == {
        "FARGATE",
        "FARGATE_SPOT",
    }


def test_worker_security_group_has_no_ingress(template):
    for group in resources(template, "AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]
    assert not resources(template, "AWS::EC2::SecurityGroupIngress")


def test_cluster_has_container_insights(template):
    (cluster,) = resources(template, "AWS::ECS::Cluster").values()
    settings = cluster["Properties"]["ClusterSettings"]
    assert {"Name": "containerInsights", "Value": "enabled"} in settings


def test_fleet_scales_on_active_jobs_per_task_between_the_parameters(template):
    (target,) = resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MinCapacity"] == {"Ref": "WorkerMinTasks"}
    assert target["Properties"]["MaxCapacity"] == {"Ref": "WorkerMaxTasks"}
    (policy,) = [
        p
        for p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"]["PolicyType"] == "TargetTrackingScaling"
    ]
    config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metric = config["CustomizedMetricSpecification"]
    assert (metric["Namespace"], metric["MetricName"], metric["Statistic"]) == (
        "VoiceAgents",
        "ActiveJobs",
        "Average",
    )
    assert metric["Dimensions"] == [{"Name": "service", "Value": "voice-worker"}]
    assert config.get("DisableScaleIn") is not True
    default_target = int(template["Parameters"]["WorkerTargetActiveJobs"]["Default"])
    assert default_target < int(template["Parameters"]["WorkerMaxJobs"]["Default"])


# ---------------------------------------------------------------- alarms


def alarm_metric_names(alarm: dict[str, Any]) -> set[str]:
    props = alarm["Properties"]
    names = {props["MetricName"]} if "MetricName" in props else set()
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            names.add(query["MetricStat"]["Metric"]["MetricName"])
    return names


def test_every_alarm_notifies_the_topic_and_says_how_to_treat_missing_data(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert {"Ref": "AlarmTopic"} in props.get("AlarmActions", []), name
        assert props.get("TreatMissingData") in {"breaching", "notBreaching"}, name


def test_alarms_cover_the_issue_list(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    watched = [alarm_metric_names(a) for a in alarms]
    for needed in (
        {"5xx", "Count"},
        {"Latency"},
        {"ReadThrottleEvents", "WriteThrottleEvents"},
        {"LiveKitReachable"},
        {"ActiveJobs"},
        {"MemoryUtilization"},
        {"RunningTaskCount"},
        {"SessionsFailed"},
    ):
        assert needed in watched, needed
    functions = resources(template, "AWS::Serverless::Function")
    for function in functions:
        for metric in ("Errors", "Throttles"):
            assert any(
                alarm_metric_names(a) == {metric}
                and a["Properties"]["Dimensions"][0]["Value"] == {"Ref": function}
                for a in alarms
            ), (function, metric)


def test_a_failed_config_load_alarms_for_either_plane(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    queries = alarms["ConfigLoadFailedAlarm"]["Properties"]["Metrics"]
    dims = {
        (d["Name"], d["Value"])
        for q in queries
        if "MetricStat" in q
        for d in q["MetricStat"]["Metric"]["Dimensions"]
    }
    assert alarm_metric_names(alarms["ConfigLoadFailedAlarm"]) == {"ConfigLoadFailed"}
    assert dims == {("service", "control-plane"), ("service", "voice-worker")}


def test_silence_is_an_alarm_for_heartbeat_metrics(template):
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        names = alarm_metric_names(alarm)
        if names & {"ActiveJobs", "LiveKitReachable", "RunningTaskCount"}:
            assert alarm["Properties"]["TreatMissingData"] == "breaching", names


def test_dashboard_shows_every_alarm(template):
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for name in resources(template, "AWS::CloudWatch::Alarm"):
        assert f"${{{name}.Arn}}" in body, name


# ---------------------------------------------------------------- IAM and secrets


def test_no_wildcard_resource_on_data_actions(template):
    checked = 0
    for name, statement in iam_statements(template):
        if statement.get("Effect") != "Allow":
            continue
        actions = set(as_list(statement["Action"]))
        assert not any(a.endswith("*") for a in actions), (name, actions)
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert actions <= RESOURCELESS_ACTIONS, (name, actions)
            checked += 1
    assert checked > 10


def test_calls_are_traced_to_x_ray_from_the_api_and_the_worker(template):
    xray = {"Fn::Sub": "https://xray.${AWS::Region}.${AWS::URLSuffix}/v1/traces"}
    api = template["Resources"]["ApiFunction"]["Properties"]
    assert api["Tracing"] == "Active"
    assert api["Environment"]["Variables"]["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == xray
    (worker,) = template["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in worker["Environment"]}
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == xray
    exports = [
        s
        for n, s in iam_statements(template)
        if n == "WorkerTaskRole" and s.get("Sid") == "TraceExport"
    ]
    assert [as_list(s["Action"]) for s in exports] == [["xray:PutTraceSegments"]]


def test_task_protection_is_scoped_to_the_worker_cluster(template):
    statements = [s for _, s in iam_statements(template)]
    protection = [s for s in statements if "ecs:UpdateTaskProtection" in as_list(s["Action"])]
    assert protection
    for statement in protection:
        (resource,) = as_list(statement["Resource"])
        assert resource == {
            "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"
            ":task/${WorkerCluster}/*"
        }


def test_secrets_are_arns_without_defaults(template):
    params = template["Parameters"]
    for name in REQUIRED_SECRET_PARAMETERS:
        assert "Default" not in params[name], name
        assert params[name]["AllowedPattern"].startswith("^arn:aws")
    secretish = re.compile(r"secret|password|token", re.IGNORECASE)
    for name, param in params.items():
        if secretish.search(name):
            assert not param.get("Default"), name


def test_worker_secrets_are_injected_by_ecs_not_set_as_environment(template):
    container = worker_container(template)
    env = container_env(template)
    assert "LIVEKIT_API_SECRET" not in env
    assert "OPENAI_API_KEY" not in env
    injected = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert injected == {
        "LIVEKIT_API_SECRET": {"Ref": "LiveKitApiSecretArn"},
        "OPENAI_API_KEY": {"Ref": "OpenAIApiKeySecretArn"},
    }


def test_functions_get_the_secret_by_arn_only(template):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["LIVEKIT_API_SECRET_ARN"] == {"Ref": "LiveKitApiSecretArn"}
    assert "LIVEKIT_API_SECRET" not in variables
    assert "OPENAI_API_KEY" not in variables


def test_no_output_exposes_a_secret(template):
    text = str(template["Outputs"])
    for name in REQUIRED_SECRET_PARAMETERS:
        assert name not in text


# ---------------------------------------------------------------- control plane


def test_functions_are_python312_arm64_built_by_the_makefile(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["arm64"]
    functions = resources(template, "AWS::Serverless::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        "functions.api.handler.handler",
        "functions.background.reaper.handler",
        "functions.background.monitor.handler",
        "functions.background.webhook_outbox.handler",
        "functions.background.agent_watchdog.handler",
        "functions.background.analysis.handler",
    }
    for name, function in functions.items():
        assert function["Metadata"]["BuildMethod"] == "makefile", name


def test_scheduled_functions_run_every_minute(template):
    functions = resources(template, "AWS::Serverless::Function")
    for name in ("ReaperFunction", "MonitorFunction"):
        (event,) = functions[name]["Properties"]["Events"].values()
        assert event["Type"] == "Schedule"
        assert event["Properties"]["Schedule"] == "rate(1 minute)"


def test_api_is_throttled_logged_and_allows_only_the_playground_origin(template):
    (api,) = resources(template, "AWS::Serverless::HttpApi").values()
    props = api["Properties"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    assert props["AccessLogSettings"]["DestinationArn"]
    assert props["CorsConfiguration"]["AllowOrigins"] == [{"Ref": "PlaygroundOrigin"}]


def test_config_bucket_is_private_encrypted_and_versioned(template):
    bucket = template["Resources"]["ConfigBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())


def test_every_optional_parameter_default_is_allowed(template):
    for name, param in template["Parameters"].items():
        if "Default" not in param:
            continue
        default = param["Default"]
        if "AllowedValues" in param:
            assert str(default) in {str(v) for v in param["AllowedValues"]}, name
        if "AllowedPattern" in param:
            assert re.fullmatch(param["AllowedPattern"], str(default)), name
        if "MinValue" in param:
            assert float(default) >= float(param["MinValue"]), name


# ---------------------------------------------------------------- the sessions table


def test_table_the_tests_build_is_the_templates_table(template):
    props = template["Resources"]["SessionsTable"]["Properties"]
    kwargs = table_create_kwargs("t")
    for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"):
        assert kwargs[key] == props[key], key
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_sessions_table(client, "t")
        table = client.describe_table(TableName="t")["Table"]
        ttl = client.describe_time_to_live(TableName="t")["TimeToLiveDescription"]
    assert table["KeySchema"] == props["KeySchema"]
    assert {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]} == {
        i["IndexName"]: i["KeySchema"] for i in props["GlobalSecondaryIndexes"]
    }
    assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"]


def test_sessions_table_is_retained_recoverable_and_on_demand(template):
    table = template["Resources"]["SessionsTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    recovery = table["Properties"]["PointInTimeRecoverySpecification"]
    assert recovery["PointInTimeRecoveryEnabled"] is True


# ---------------------------------------------------------------- control plane authority


def test_no_free_slot_left_scales_the_fleet_out_by_one_task(template):
    policies = resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    step = policies["WorkerScaleOutOnSlotsPolicy"]["Properties"]
    assert step["PolicyType"] == "StepScaling"
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalUpperBound": 0, "ScalingAdjustment": 1}
    ]
    alarm = resources(template, "AWS::CloudWatch::Alarm")["FleetSlotsExhaustedAlarm"]["Properties"]
    assert alarm["MetricName"] == "FleetAvailableSlots"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert {"Ref": "WorkerScaleOutOnSlotsPolicy"} in alarm["AlarmActions"]


def test_admission_refusals_and_dead_lettered_agent_checks_alarm(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert alarms["AdmissionRejectedAlarm"]["Properties"]["MetricName"] == "AdmissionRejected"
    dlq = alarms["AgentWatchdogDeadLettersAlarm"]["Properties"]
    assert dlq["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["AgentWatchdogDeadLetterQueue", "QueueName"]
    }


def test_the_agent_watchdog_is_fed_by_a_queue_with_a_dead_letter_queue(template):
    queues = resources(template, "AWS::SQS::Queue")
    queue = queues["AgentWatchdogQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["AgentWatchdogDeadLetterQueue", "Arn"]
    }
    function = resources(template, "AWS::Serverless::Function")["AgentWatchdogFunction"]
    (event,) = function["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # SQS requires the visibility timeout to cover the function's run.
    assert queue["VisibilityTimeout"] >= function["Properties"]["Timeout"]
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["AGENT_WATCHDOG_QUEUE_URL"] == {"Ref": "AgentWatchdogQueue"}


def test_the_worker_may_only_read_session_gates_and_versions_and_write_and_read_heartbeats(
    template,
):
    role = resources(template, "AWS::IAM::Role")["WorkerTaskRole"]
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]

    def actions(statement: dict[str, Any]) -> list[str]:
        action = statement.get("Action", [])
        return [action] if isinstance(action, str) else list(action)

    dynamo = [s for s in statements if any(a.startswith("dynamodb:") for a in actions(s))]
    by_sid = {s["Sid"]: s for s in dynamo}
    assert set(by_sid) == {"SessionGateRead", "AgentVersionRead", "CapacityHeartbeat"}
    version = by_sid["AgentVersionRead"]
    assert version["Action"] == "dynamodb:GetItem"
    assert version["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["AGENT#*"]
    # Exactly what the worker's read projects: the version's content, not traffic or authors.
    assert set(version["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {
        "pk",
        "sk",
        *VERSION_PROJECTION.split(", "),
    }
    gate = by_sid["SessionGateRead"]
    assert gate["Action"] == "dynamodb:GetItem"
    assert gate["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["SESSION#*"]
    assert set(gate["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {
        "pk",
        "sk",
        "status",
        "join_by",
        SESSION_VERSION_PROJECTION,
    }
    beat = by_sid["CapacityHeartbeat"]
    # Its own heartbeat, and its peers' (read, and claimed once when a peer falls silent).
    assert sorted(beat["Action"]) == ["dynamodb:PutItem", "dynamodb:Query"]
    keys = beat["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert keys == ["FLEET", "FLEET#*"]
    assert (
        Heartbeat(
            worker_id="w1", agent_name="a", free_slots=1, total_slots=1, at=NOW, valid_until=NOW
        )
        .to_item()["pk"]["S"]
        .startswith("FLEET#")
    )
