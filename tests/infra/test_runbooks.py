"""Every alarm in the template has a runbook in docs/runbooks.md, and its description links it."""

from __future__ import annotations

import re

from infra.build.reference import ROOT
from infra.template import load_template

RUNBOOKS = ROOT / "docs" / "runbooks.md"


def _alarms() -> dict[str, dict]:
    resources = load_template()["Resources"]
    return {
        name: res["Properties"]
        for name, res in resources.items()
        if res["Type"] == "AWS::CloudWatch::Alarm"
    }


def _sections() -> dict[str, str]:
    """Runbook sections by heading, each with its text up to the next heading."""
    parts = re.split(r"^## (\S+)\s*$", RUNBOOKS.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_template_has_alarms_to_check():
    assert len(_alarms()) >= 20


def test_every_alarm_has_a_runbook_that_says_what_it_means_and_what_to_do():
    sections = _sections()
    missing = sorted(set(_alarms()) - set(sections))
    assert missing == [], f"alarms without a section in {RUNBOOKS.name}: {missing}"
    for name in _alarms():
        text = sections[name]
        assert "**Means:**" in text, f"{name}: the runbook does not say what the alarm means"
        flat = " ".join(text.split())
        assert "**Do:**" in flat or "/ do:**" in flat, f"{name}: the runbook says nothing to do"


def test_every_runbook_belongs_to_an_alarm():
    assert sorted(set(_sections()) - set(_alarms())) == []


def test_every_alarm_description_links_its_runbook():
    for name, props in _alarms().items():
        link = f"Runbook: docs/runbooks.md#{name.lower()}"
        assert link in props["AlarmDescription"], f"{name}: description does not link {link}"
        assert len(props["AlarmDescription"]) <= 1024, (
            f"{name}: description over CloudWatch's limit"
        )
