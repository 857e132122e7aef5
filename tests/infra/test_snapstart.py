"""The API function runs on a SnapStart runtime, behind the alias SAM publishes, built by its Python."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.template import TEMPLATE_PATH, load_template
from tests.support.tools import missing_tool

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation will deploy it."""
    if not SAM_PYTHON.exists():
        missing_tool(
            "the SAM CLI's venv is missing: run `make sam-venv` (make template-check does)"
        )
    out = subprocess.run(
        [str(SAM_PYTHON), str(ROOT / "tests/support/sam_transform.py"), str(TEMPLATE_PATH)],
        env={"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def runtime_version(template: dict[str, Any]) -> tuple[int, int]:
    runtime = template["Globals"]["Function"]["Runtime"]
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    assert match, runtime
    return int(match[1]), int(match[2])


def test_the_runtime_is_a_python_that_supports_snapstart(template: dict[str, Any]) -> None:
    assert runtime_version(template) >= (3, 12)
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            assert "Runtime" not in res["Properties"], f"{name} overrides the Globals runtime"


def test_the_api_function_snapshots_its_published_versions_behind_an_alias(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["ApiFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert props["AutoPublishAlias"] == "live"
    # What SnapStart cannot be combined with.
    assert "ProvisionedConcurrencyConfig" not in props
    assert "FileSystemConfigs" not in props
    assert props.get("EphemeralStorage", {"Size": 512})["Size"] <= 512


def test_the_http_api_invokes_the_alias_not_the_unpublished_function(
    transformed: dict[str, Any],
) -> None:
    resources = transformed["Resources"]
    (alias_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Alias"]
    alias = resources[alias_id]["Properties"]
    assert alias["Name"] == "live"
    assert alias["FunctionName"] == {"Ref": "ApiFunction"}
    assert resources["ApiFunction"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    body = json.dumps(resources["HttpApi"]["Properties"]["Body"])
    assert "${" + alias_id + "}/invocations" in body
    assert "${ApiFunction.Arn}" not in body and "${ApiFunction}/" not in body
    permissions = [
        v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::Lambda::Permission"
        and v["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert permissions
    assert all(p["FunctionName"] == {"Ref": alias_id} for p in permissions)


def test_the_package_is_built_and_compiled_by_the_runtimes_python(
    template: dict[str, Any],
) -> None:
    printed = subprocess.run(
        ["make", "-s", "-p", "-n", "-f", "functions/Makefile", "package", "ARTIFACTS_DIR=/x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHON"},
    ).stdout
    variables = dict(re.findall(r"^(PYTHON|LAMBDA_PYTHON_VERSION) := (.*)$", printed, re.M))
    major, minor = runtime_version(template)
    assert variables["LAMBDA_PYTHON_VERSION"] == f"{major}.{minor}"
    version = subprocess.run(
        [variables["PYTHON"], "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == f"{major}.{minor}"
    makefile = (ROOT / "functions" / "Makefile").read_text(encoding="utf-8")
    assert "--python-version $(LAMBDA_PYTHON_VERSION)" in makefile
    assert "$(PYTHON) -m compileall" in makefile


def test_the_package_leaves_the_snapstart_hook_library_to_the_runtime() -> None:
    # A copy in /var/task would shadow the runtime's: hooks registered there would never run.
    lock = (ROOT / "locks" / "lambda.txt").read_text(encoding="utf-8")
    names = {m.lower() for m in re.findall(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    assert "fastapi" in names
    assert "snapshot-restore-py" not in names
