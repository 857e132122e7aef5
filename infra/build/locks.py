"""Writes and checks the hashed lock files, one per deployable, resolved from pyproject.toml by uv."""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_VERSION = "3.11"


def lambda_python_version(root: Path = ROOT) -> str:
    """The Lambda runtime's Python version, from template.yaml (functions/Makefile reads the same)."""
    found = re.search(r"^ *Runtime: python([0-9.]+) *$", (root / "template.yaml").read_text(), re.M)
    if found is None:
        raise SystemExit("template.yaml names no python Runtime")
    return found.group(1)


@dataclass(frozen=True)
class Lock:
    name: str
    extras: tuple[str, ...]
    # The platform the deployable runs on: wheels are chosen for it, not for this machine.
    platform: str
    only_binary: bool = False
    # Resolved within the development lock, so what ships is the version the tests ran.
    constrained_by_dev: bool = True
    # A requirements file of packages to leave out although a dependency asks for them.
    excludes: str | None = None
    python: str = PYTHON_VERSION

    @property
    def path(self) -> str:
        return f"locks/{self.name}.txt"


# Fargate tasks run X86_64 on Debian bookworm or later (glibc 2.36); Lambda runs arm64 on Amazon
# Linux 2 (manylinux2014), from wheels only, as functions/Makefile installs them.
DEV = Lock("dev", ("api", "worker", "dev"), "x86_64-manylinux_2_36", constrained_by_dev=False)
LOCKS = (
    DEV,
    Lock("worker", ("worker",), "x86_64-manylinux_2_36", excludes="locks/worker-excludes.txt"),
    Lock(
        "lambda",
        ("api",),
        "aarch64-manylinux2014",
        only_binary=True,
        python=lambda_python_version(),
    ),
)


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("uv not found: run `make install` (it is in the dev lock)")
    return found


class ResolutionError(Exception):
    """uv found no set of versions for a lock."""


def compile_command(
    lock: Lock, output: Path, dev_lock: Path, *, upgrade: bool, offline: bool
) -> list[str]:
    cmd = [uv(), "pip", "compile", "pyproject.toml", "--quiet"]
    cmd += [f"--extra={extra}" for extra in lock.extras]
    cmd += ["--python-version", lock.python, "--python-platform", lock.platform]
    cmd += ["--generate-hashes", "--custom-compile-command", "make lock", "-o", str(output)]
    if lock.only_binary:
        cmd += ["--only-binary", ":all:"]
    if lock.constrained_by_dev:
        cmd += ["--constraints", str(dev_lock)]
    if lock.excludes:
        cmd += ["--excludes", lock.excludes]
    if upgrade:
        cmd.append("--upgrade")
    if offline:
        cmd.append("--offline")
    return cmd


def compile_lock(
    lock: Lock, output: Path, root: Path, dev_lock: Path, *, upgrade: bool = False
) -> None:
    """Resolves into `output`, keeping the versions already pinned there unless `upgrade`.

    Tries uv's cache alone first, so a check on a machine that resolved before needs no network.
    """
    for offline in (True, False):
        cmd = compile_command(lock, output, dev_lock, upgrade=upgrade, offline=offline)
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if done.returncode == 0:
            return
    raise ResolutionError(f"uv could not resolve {lock.path}:\n{done.stderr}")


def write_locks(root: Path = ROOT, *, upgrade: bool = False) -> list[Path]:
    (root / "locks").mkdir(exist_ok=True)
    written = []
    for lock in LOCKS:  # dev first: the others are resolved within it
        compile_lock(lock, root / lock.path, root, root / DEV.path, upgrade=upgrade)
        written.append(root / lock.path)
    return written


def stale_locks(root: Path = ROOT) -> list[str]:
    """Diffs of every lock that a fresh resolution (from its own pins) would change.

    The fresh resolution runs on a copy of pyproject.toml and locks/, so the paths written into
    the annotations are the same as in the committed files.
    """
    missing = [f"{lock.path} is missing" for lock in LOCKS if not (root / lock.path).exists()]
    if missing:
        return missing
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        shutil.copy(root / "pyproject.toml", copy)
        shutil.copytree(root / "locks", copy / "locks")
        try:
            write_locks(copy)
        except ResolutionError as exc:
            return [str(exc)]
        problems = []
        for lock in LOCKS:
            old = (root / lock.path).read_text(encoding="utf-8").splitlines(keepends=True)
            new = (copy / lock.path).read_text(encoding="utf-8").splitlines(keepends=True)
            diff = difflib.unified_diff(old, new, lock.path, f"{lock.path} (from pyproject.toml)")
            if text := "".join(diff):
                problems.append(text)
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--upgrade", action="store_true", help="write: newest versions allowed")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            for path in write_locks(upgrade=args.upgrade):
                print(f"wrote {path.relative_to(ROOT)}")
            return 0
        problems = stale_locks()
    except ResolutionError as exc:
        print(exc, file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("pyproject.toml and the locks disagree: run `make lock`", file=sys.stderr)
        return 1
    print(f"locks match pyproject.toml: {', '.join(lock.name for lock in LOCKS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
