"""`python -m voice.config validate [URI]`: validates a config and prints the effective one, redacted."""

from __future__ import annotations

import argparse
import json
import sys

from voice.config.loader import ConfigError, load_config, redact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voice.config")
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="validate a config and print the effective one")
    validate.add_argument("uri", nargs="?", help="path, s3://bucket/key or ssm:/name")
    args = parser.parse_args(argv)

    try:
        loaded = load_config(args.uri)
    except ConfigError as exc:
        print(f"invalid config:\n{exc}", file=sys.stderr)
        return 1
    effective = redact(loaded.config.model_dump(mode="json"))
    print(json.dumps(effective, indent=2))
    print(f"ok: {loaded.source} (version {loaded.version})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
