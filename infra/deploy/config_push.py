"""Validates a voice config file and uploads it to where the deployed stack reads it from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from infra.deploy.samconfig import SAMCONFIG, read_settings
from infra.deploy.stack import session, stack_outputs
from voice.config import ConfigError, parse_config


def deployed(uri: str, *, s3: Any, ssm: Any) -> str | None:
    """The config text the stack reads now, or None when there is none yet."""
    from botocore.exceptions import ClientError

    try:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        if uri.startswith("ssm:"):
            return ssm.get_parameter(Name=uri.removeprefix("ssm:"))["Parameter"]["Value"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "ParameterNotFound"):
            return None
        raise
    return None


def rename_refusal(current: str | None, new: str, source: str) -> str | None:
    """Why pushing `new` over `current` would leave calls without an agent, or None.

    Workers register under voice.realtime.worker.agent_name when they start and the API
    dispatches only to names running workers report: a pushed rename alone is refused
    (503 agent_not_served) until workers under the new name run.
    """
    if current is None:
        return None
    try:
        old_name = parse_config(current, "deployed", env={}).realtime.worker.agent_name
    except ConfigError:
        return None  # the deployed one is broken: nothing to keep serving
    new_name = parse_config(new, source, env={}).realtime.worker.agent_name
    if old_name == new_name:
        return None
    return (
        f"{source}: voice.realtime.worker.agent_name changes '{old_name}' -> '{new_name}'. "
        f"Running workers serve '{old_name}', and the API dispatches only to names workers "
        f"serve, so new sessions would be refused (503 agent_not_served) until workers run "
        f"under '{new_name}'. A rename needs: 1) workers under the new name "
        f"(OPENAGENTS_LIVEKIT_AGENT_NAME={new_name} on the worker service, deployed), 2) this "
        "push, with --rename-agent, 3) the override removed once the config names it."
    )


def push(text: str, uri: str, *, s3: Any, ssm: Any) -> str:
    """Writes the config text to an s3://bucket/key or ssm:/name URI; returns a version label."""
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        result = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=text.encode("utf-8"),
            ContentType="application/yaml",
            ServerSideEncryption="AES256",
        )
        return result.get("VersionId", "unversioned")
    if uri.startswith("ssm:"):
        result = ssm.put_parameter(
            Name=uri.removeprefix("ssm:"),
            Value=text,
            Type="String",
            Tier="Advanced",
            Overwrite=True,
        )
        return str(result["Version"])
    raise SystemExit(f"the stack's config URI {uri!r} is neither s3:// nor ssm:")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path, help="the YAML to upload")
    parser.add_argument("--samconfig", type=Path, default=SAMCONFIG)
    parser.add_argument(
        "--rename-agent",
        action="store_true",
        help="push a changed voice.realtime.worker.agent_name (workers under it already run)",
    )
    args = parser.parse_args(argv)

    text = args.config.read_text(encoding="utf-8")
    # Refuse a config the control plane would reject, before it reaches the stack.
    parse_config(text, str(args.config), env={})
    settings = read_settings(args.samconfig)
    aws = session(settings)
    uri = stack_outputs(settings, aws.client("cloudformation"))["ConfigUri"]
    s3, ssm = aws.client("s3"), aws.client("ssm")
    refusal = rename_refusal(deployed(uri, s3=s3, ssm=ssm), text, str(args.config))
    if refusal and not args.rename_agent:
        raise SystemExit(refusal)
    version = push(text, uri, s3=s3, ssm=ssm)
    print(
        f"pushed {args.config} to {uri} (version {version}); new sessions pick it up within the TTL"
    )


if __name__ == "__main__":
    main()
