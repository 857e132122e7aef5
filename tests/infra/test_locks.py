"""The locks agree with pyproject.toml, and a dependency change without `make lock` is caught."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from infra.build.locks import LOCKS, ROOT, stale_locks


def pins(lock: str, root: Path = ROOT) -> dict[str, str]:
    text = (root / lock).read_text(encoding="utf-8")
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", text, re.M))


def copy_project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "locks", tmp_path / "locks")
    return tmp_path


def test_the_committed_locks_match_pyproject():
    assert stale_locks() == []


def test_every_pin_carries_a_hash():
    for lock in LOCKS:
        text = (ROOT / lock.path).read_text(encoding="utf-8")
        assert text.count("==") == len(re.findall(r"==\S+ \\\n\s+--hash=sha256:", text)), lock.path


def test_worker_and_lambda_ship_the_versions_the_tests_ran():
    dev = pins("locks/dev.txt")
    for lock in ("locks/worker.txt", "locks/lambda.txt"):
        shipped = pins(lock)
        assert shipped, lock
        assert {name: dev.get(name) for name in shipped} == shipped, lock


def test_a_dependency_dropped_from_pyproject_without_relocking_is_reported(tmp_path: Path):
    root = copy_project(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('  "loguru>=0.7",\n', ""))

    problems = stale_locks(root)

    assert any("locks/worker.txt" in p and "-loguru==" in p for p in problems)


def test_a_tightened_version_range_without_relocking_is_reported(tmp_path: Path):
    root = copy_project(tmp_path)
    pyproject = root / "pyproject.toml"
    pinned = pins("locks/lambda.txt")["pyyaml"]
    text = pyproject.read_text().replace('"pyyaml>=6.0"', f'"pyyaml>=6.0,!={pinned}"')
    pyproject.write_text(text)

    problems = stale_locks(root)

    assert any(f"-pyyaml=={pinned}" in p for p in problems)
