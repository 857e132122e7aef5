"""`python -m functions.audit`: checks the session invariants; exit 1 if violated, 2 if it cannot run."""

from __future__ import annotations

import argparse
import sys

from functions.aio import run_sync
from functions.domain.audit import AuditReport
from functions.domain.errors import DomainError
from functions.wiring import get_container


def audit_once(*, repair: bool) -> AuditReport:
    return run_sync(get_container().audit.run(repair=repair))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.audit", description=__doc__)
    parser.add_argument("--repair", action="store_true", help="fix what is safe to fix")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = audit_once(repair=args.repair)
    except DomainError as exc:  # the table or the config could not be read: no verdict
        print(f"audit could not run: {exc}", file=sys.stderr)
        return 2
    print(report.model_dump_json(indent=2) if args.json else report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
