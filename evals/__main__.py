"""`python -m evals run SUITE --agent ID --version N [--mode text|audio] [--api URL] [--repeat N]`.

Exit codes: 0 the suite passed its threshold, 1 it did not, 2 the suite, the options or the API
refused (the message says what to fix).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC
from pathlib import Path

from evals.control_plane import ApiError, ControlPlane
from evals.results import SuiteResult, write
from evals.runner import DEFAULT_AGENT, Runner, RunOptions, UsageError
from evals.scenario import ScenarioError, load_suite
from infra.local.paths import STATE_DIR

PASSED, FAILED, REFUSED = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite (a folder of scenarios) or one scenario file")
    run.add_argument("suite", type=Path)
    run.add_argument(
        "--agent", default=DEFAULT_AGENT, help="agent id; 'default': the config file's agent"
    )
    run.add_argument("--version", type=int, help="the agent's version (needed with --agent ID)")
    run.add_argument("--mode", choices=["text", "audio"], default="text")
    run.add_argument(
        "--api", help="the control plane's URL: reads the version, stores the result, runs audio"
    )
    run.add_argument(
        "--api-key", default=os.environ.get("EVAL_API_KEY"), help="default: $EVAL_API_KEY"
    )
    run.add_argument("--repeat", type=int, default=1, help="runs per scenario (a pass rate each)")
    run.add_argument("--out", type=Path, help="where results.json and report.md go")
    run.add_argument(
        "--config", help="the voice config (default: $VOICE_CONFIG_URI, then the repo's)"
    )
    run.add_argument("--caller-model", help="default: voice.realtime.evals.caller_model")
    run.add_argument("--judge-model", help="default: voice.realtime.evals.judge_model")
    run.add_argument(
        "--no-store", action="store_true", help="do not store the result with the version"
    )
    check = sub.add_parser("check", help="validate a suite's files without running them")
    check.add_argument("suite", type=Path)
    return parser


async def run(args: argparse.Namespace) -> SuiteResult:
    opts = RunOptions(
        suite=args.suite,
        agent=args.agent,
        version=args.version,
        mode=args.mode,
        api=args.api,
        api_key=args.api_key,
        repeat=args.repeat,
        config_uri=args.config,
        caller_model=args.caller_model,
        judge_model=args.judge_model,
    )
    if not opts.api:
        return await Runner(opts, None).run()
    async with ControlPlane(opts.api, opts.api_key or "") as api:
        result = await Runner(opts, api).run()
        if opts.agent != DEFAULT_AGENT and opts.version is not None and not args.no_store:
            await api.record_eval(opts.agent, opts.version, result.summary())
            print(f"stored with {opts.agent} version {opts.version}")
        return result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            suite = load_suite(args.suite)
            print(
                f"{suite.settings.name}: {len(suite.scenarios)} scenario(s), threshold {suite.settings.threshold:.0%}"
            )
            return PASSED
        result = asyncio.run(run(args))
    except (ScenarioError, UsageError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return REFUSED
    stamp = result.started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or STATE_DIR / "evals" / f"{result.suite}-{result.mode}-{stamp}"
    json_path, report_path = write(result, out)
    for s in result.scenarios:
        shown = f"{s.passed_runs}/{len(s.runs)} passed" if s.runs else f"skipped ({s.skipped})"
        print(f"  {s.name}: {shown}")
    verdict = "PASSED" if result.passed else "FAILED"
    print(
        f"{result.suite} ({result.mode}): {verdict}, {result.pass_rate:.0%} of runs passed, "
        f"{result.threshold:.0%} needed\nreport: {report_path}\nresults: {json_path}"
    )
    return PASSED if result.passed else FAILED


if __name__ == "__main__":
    sys.exit(main())
