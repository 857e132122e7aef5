"""The operator command for API keys, against the table, as an operator runs it."""

from __future__ import annotations

import pytest

from functions.keys import main
from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke


def test_create_list_and_revoke_a_key(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--table", control_plane.table, "create", "--user", "carol"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("vk_")
    assert "shown only once" in out.err
    headers = {"x-api-key": key}
    assert invoke("GET", "/voice/realtime/sessions", headers=headers).status == 200

    assert main(["--table", control_plane.table, "list"]) == 0
    listing = capsys.readouterr().out
    assert "carol" in listing
    assert key not in listing

    key_id = next(line.split()[0] for line in listing.splitlines() if "carol" in line)
    assert main(["--table", control_plane.table, "revoke", key_id]) == 0
    assert invoke("GET", "/voice/realtime/sessions", headers=headers).status == 401
    assert main(["--table", control_plane.table, "revoke", "no-such-key"]) == 1


def test_user_ids_with_separators_are_refused(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--table", control_plane.table, "create", "--user", "a:b"]) == 2
    assert "user id" in capsys.readouterr().err
