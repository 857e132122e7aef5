"""Prints the Lambda package's pip requirements: the project's own dependencies plus the `api` extra."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def lambda_requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["api"]]


if __name__ == "__main__":
    print("\n".join(lambda_requirements(Path(sys.argv[1]))))
