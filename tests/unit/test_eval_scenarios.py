"""Scenario and suite files: every mistake names its file and field; the deterministic checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.__main__ import REFUSED, main
from evals.checks import check, overall
from evals.results import CheckResult, Conversation, Event
from evals.scenario import Expectation, ScenarioError, load_suite

EXAMPLE_SUITE = Path(__file__).resolve().parents[2] / "evals" / "suites" / "default"


def _suite(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _errors(folder: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_suite(folder)
    return caught.value.errors


def test_the_example_suite_loads_with_its_four_scenarios() -> None:
    suite = load_suite(EXAMPLE_SUITE)
    assert suite.settings.threshold == 1.0
    assert len(suite.scenarios) == 4


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            "name: x\nexpect:\n  - calls_tool: {arguments: {a: 1}}\n",
            "expect.0.calls_tool.name: is required",
        ),
        (
            "name: x\npersona: {wants_to: refund}\nexpect: [{says: hi}]\n",
            "persona.wants_to: is not a known key",
        ),
        ("name: x\nexpect:\n  - {says: hi, hands_off: billing}\n", "expect.0: "),
        (
            "name: x\nexpect: [{says_regex: '(unclosed'}]\n",
            "says_regex is not a regular expression",
        ),
        (
            "name: x\npersona: {behaviour: [shouty]}\nexpect: [{says: hi}]\n",
            "persona.behaviour.0: ",
        ),
        ("name: x\nexpect: []\n", "expect: "),
        ("name: x\nmax_turns: 99\nexpect: [{says: hi}]\n", "max_turns: must be <= 50"),
        ("- just a list\n", "(top level): must be a mapping"),
        ("name: x\nexpect: [{says: 'unclosed\n", "not valid YAML"),
    ],
)
def test_a_bad_scenario_is_reported_with_its_file_and_field(
    tmp_path: Path, text: str, named: str
) -> None:
    errors = _errors(_suite(tmp_path, {"bad.yaml": text}))
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{tmp_path / 'bad.yaml'}: "), errors
    assert named in errors[0], errors


def test_every_bad_file_of_a_suite_is_reported_not_only_the_first(tmp_path: Path) -> None:
    errors = _errors(
        _suite(
            tmp_path,
            {
                "suite.yaml": "threshold: 2\n",
                "a.yaml": "name: same\nexpect: [{says: hi}]\n",
                "b.yaml": "name: same\nexpect: [{says: hi}]\n",
                "c.yaml": "name: c\nexpect: [{within_ms: 0}]\n",
            },
        )
    )
    joined = "\n".join(errors)
    assert f"{tmp_path / 'suite.yaml'}: threshold: must be <= 1.0" in joined
    assert f"{tmp_path / 'c.yaml'}: expect.0.within_ms: must be > 0" in joined
    assert "'same' is used by more than one scenario" in joined


def test_the_check_command_refuses_a_bad_suite_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _suite(tmp_path, {"bad.yaml": "name: x\nexpect: [{calls_tool: {}}]\n"})
    assert main(["check", str(folder)]) == REFUSED
    assert "bad.yaml: expect.0.calls_tool.name: is required" in capsys.readouterr().err


def _conversation() -> Conversation:
    conv = Conversation()
    conv.add(Event(kind="caller", text="Where is order A17?"))
    conv.add(Event(kind="tool_call", name="order_status", arguments={"order_id": "A17", "x": 1}))
    conv.add(Event(kind="agent", text="Order A17 shipped on Monday.", latency_ms=900.0))
    return conv


@pytest.mark.parametrize(
    ("expectation", "verdict"),
    [
        ({"calls_tool": {"name": "order_status", "arguments": {"order_id": "A17"}}}, "pass"),
        ({"calls_tool": {"name": "order_status", "arguments": {"order_id": "B2"}}}, "fail"),
        ({"calls_tool": {"name": "refund"}}, "fail"),
        ({"says": "shipped on monday"}, "pass"),
        ({"says_regex": r"order \w+ shipped"}, "pass"),
        ({"says": "delivered"}, "fail"),
        ({"within_ms": 1000}, "pass"),
        ({"within_ms": 500}, "fail"),
        ({"hands_off": "billing"}, "fail"),
        ({"ends_call": True}, "fail"),
    ],
)
def test_deterministic_checks(expectation: dict[str, object], verdict: str) -> None:
    result = check(Expectation.model_validate(expectation), _conversation(), "text")
    assert result is not None and result.verdict == verdict, result


def test_audio_runs_skip_what_they_cannot_observe_and_a_run_fails_on_any_failed_check() -> None:
    exp = Expectation.model_validate({"calls_tool": {"name": "order_status"}})
    skipped = check(exp, _conversation(), "audio")
    assert skipped is not None and skipped.verdict == "skipped"

    def c(v: str) -> CheckResult:
        return CheckResult(expectation="e", verdict=v, reason="r")  # type: ignore[arg-type]

    assert overall([c("pass"), c("skipped")]) == "pass"
    assert overall([c("pass"), c("unsure")]) == "unsure"
    assert overall([c("unsure"), c("fail")]) == "fail"
