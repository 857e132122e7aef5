"""Prints template.yaml as CloudFormation after the SAM transform (run with the SAM CLI's venv).

.venv-sam/bin/python tests/support/sam_transform.py template.yaml > transformed.json
"""

from __future__ import annotations

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policy, so the transform needs no IAM lookup."""

    def load(self) -> dict[str, str]:
        return {}


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # As `sam validate` does: the built package's location stands in for the local folder.
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/key"
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
