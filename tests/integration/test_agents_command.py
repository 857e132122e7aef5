"""The operator command for agents, against the table, as an operator runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.agents.__main__ import main
from infra.local.paths import CONFIG_FILE
from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke


def agents(cp: ControlPlane, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--table", cp.table, "--account", "alice", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_an_operator_rolls_out_a_version_from_yaml_and_back(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, agent_id = agents(control_plane, capsys, "create", "front desk")
    assert code == 0
    agent_id = agent_id.strip()
    # A whole config file is a version too: its agent sections are taken.
    assert agents(control_plane, capsys, "publish", agent_id, str(CONFIG_FILE))[0] == 0
    new = tmp_path / "v2.yaml"
    new.write_text("agent:\n  type: single_agent\n  instructions: Be brief.\n")
    code, said = agents(control_plane, capsys, "publish", agent_id, str(new), "--note", "brief")
    assert (code, said.strip()) == (0, f"published {agent_id} version 2")

    code, diff = agents(control_plane, capsys, "diff", agent_id, "1", "2")
    assert code == 0
    assert "-  type: smart_router" in diff and "+  type: single_agent" in diff
    assert "+  instructions: Be brief." in diff

    code, line = agents(control_plane, capsys, "traffic", agent_id, "1=90", "2=10")
    assert (code, line.split(":")[0]) == (0, "revision 2")
    assert "v1 90%, v2 10%" in line
    code, line = agents(
        control_plane, capsys, "traffic", agent_id, "1=50", "2=50", "--expected-revision", "1"
    )
    assert code == 1 and "not 1" in line
    assert "v2 100%" in agents(control_plane, capsys, "promote", agent_id, "2")[1]
    assert "v1 90%, v2 10%" in agents(control_plane, capsys, "rollback", agent_id)[1]
    code, history = agents(control_plane, capsys, "history", agent_id)
    assert [line.split(":")[0] for line in history.splitlines()] == [
        f"revision {n}" for n in range(1, 5)
    ]
    code, listing = agents(control_plane, capsys, "list")
    assert agent_id in listing and "latest v2" in listing
    # What the operator did is what the API shows.
    traffic = invoke(
        "GET", f"/voice/realtime/agents/{agent_id}/traffic", headers=control_plane.headers()
    ).body
    assert traffic["revision"] == 4 and traffic["action"] == "rollback"


def test_a_bad_version_file_names_the_field_and_another_account_sees_nothing(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    agent_id = agents(control_plane, capsys, "create", "x")[1].strip()
    bad = tmp_path / "bad.yaml"
    bad.write_text("vad:\n  threshold: 3\n")
    code, said = agents(control_plane, capsys, "publish", agent_id, str(bad))
    assert code == 1 and "config.vad.threshold" in said
    code = main(["--table", control_plane.table, "--account", "bob", "history", agent_id])
    assert code == 1
    assert f"no agent {agent_id}" in capsys.readouterr().err
