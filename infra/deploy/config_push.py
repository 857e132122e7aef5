"""Validates a voice config file and uploads it to where the deployed stack reads it from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from infra.deploy.samconfig import SAMCONFIG, read_settings
from infra.deploy.stack import session, stack_outputs
from voice.config import parse_config


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
    args = parser.parse_args(argv)

    text = args.config.read_text(encoding="utf-8")
    # Refuse a config the control plane would reject, before it reaches the stack.
    parse_config(text, str(args.config), env={})
    settings = read_settings(args.samconfig)
    aws = session(settings)
    uri = stack_outputs(settings, aws.client("cloudformation"))["ConfigUri"]
    version = push(text, uri, s3=aws.client("s3"), ssm=aws.client("ssm"))
    print(
        f"pushed {args.config} to {uri} (version {version}); new sessions pick it up within the TTL"
    )


if __name__ == "__main__":
    main()
