"""Reads template.yaml, so the table the tests and the local stack build is the deployed one."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
TABLE_RESOURCE = "SessionsTable"


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as plain dicts."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@lru_cache(maxsize=4)
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


def table_create_kwargs(table_name: str, path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """`create_table` arguments for the sessions table exactly as `template.yaml` defines it."""
    props = load_template(path)["Resources"][TABLE_RESOURCE]["Properties"]
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return kwargs


def table_ttl_attribute(path: Path = TEMPLATE_PATH) -> str | None:
    spec = load_template(path)["Resources"][TABLE_RESOURCE]["Properties"].get(
        "TimeToLiveSpecification"
    )
    return spec["AttributeName"] if spec and spec.get("Enabled") else None


def create_sessions_table(dynamodb_client: Any, table_name: str) -> None:
    """Creates the sessions table (and its TTL setting) through any DynamoDB client."""
    dynamodb_client.create_table(**table_create_kwargs(table_name))
    dynamodb_client.get_waiter("table_exists").wait(TableName=table_name)
    ttl = table_ttl_attribute()
    if ttl:
        dynamodb_client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True},
        )
