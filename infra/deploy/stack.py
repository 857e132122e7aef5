"""Looks up the deployed stack's outputs (the helpers' only source of names)."""

from __future__ import annotations

from typing import Any

import boto3

from infra.deploy.samconfig import DeploySettings


def session(settings: DeploySettings) -> boto3.session.Session:
    return boto3.session.Session(region_name=settings.region)


def stack_outputs(settings: DeploySettings, cfn: Any = None) -> dict[str, str]:
    cfn = cfn or session(settings).client("cloudformation")
    (stack,) = cfn.describe_stacks(StackName=settings.stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
