"""Trunk and dispatch rule sync against a real LiveKit server: a second run updates, never adds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from livekit import api

from functions.store.sip import (
    INBOUND_PREFIX,
    OUTBOUND_PREFIX,
    InboundRoute,
    OutboundTrunk,
    sync_inbound,
    sync_outbound,
)
from infra.local.paths import CONFIG_FILE, ROOT
from tests.support.phone_stack import PhoneStack
from voice.metadata import DispatchMetadata

pytestmark = [pytest.mark.sip, pytest.mark.livekit]


async def inbound_named(lk: api.LiveKitAPI, name: str) -> tuple[list, list]:
    trunks = (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
    rules = (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    return [t for t in trunks if t.name == name], [r for r in rules if r.name == name]


async def test_syncing_an_inbound_number_twice_updates_its_trunk_and_rule_in_place(
    phone_stack: PhoneStack, lk: api.LiveKitAPI
) -> None:
    number = "+15550177"
    first = await sync_inbound(lk, InboundRoute(number=number, agent_name="agent-a"))
    second = await sync_inbound(
        lk, InboundRoute(number=number, agent_name="agent-b", dispatch_metadata='{"x": 1}')
    )
    assert (second.trunk_id, second.rule_id) == (first.trunk_id, first.rule_id)
    trunks, rules = await inbound_named(lk, INBOUND_PREFIX + number)
    assert [t.sip_trunk_id for t in trunks] == [first.trunk_id]
    assert list(trunks[0].numbers) == [number]
    assert [r.sip_dispatch_rule_id for r in rules] == [first.rule_id]
    assert list(rules[0].trunk_ids) == [first.trunk_id]
    (agent,) = rules[0].room_config.agents
    assert (agent.agent_name, agent.metadata) == ("agent-b", '{"x": 1}')


async def test_syncing_an_outbound_trunk_twice_keeps_one_trunk_with_the_new_address(
    phone_stack: PhoneStack, lk: api.LiveKitAPI
) -> None:
    spec = OutboundTrunk(name="sync-test", address="127.0.0.1:5999", number="+15550188")
    first = await sync_outbound(lk, spec)
    second = await sync_outbound(lk, spec.model_copy(update={"address": "127.0.0.1:6000"}))
    assert second == first
    trunks = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    named = [t for t in trunks if t.name == OUTBOUND_PREFIX + "sync-test"]
    assert [(t.sip_trunk_id, t.address) for t in named] == [(first, "127.0.0.1:6000")]


async def test_a_second_inbound_trunk_for_a_number_is_refused_by_livekit_so_sync_updates(
    phone_stack: PhoneStack, lk: api.LiveKitAPI
) -> None:
    """Why sync looks its trunk up first: creating another one for the number is an error."""
    number = "+15550166"
    synced = await sync_inbound(lk, InboundRoute(number=number, agent_name="agent-a"))
    with pytest.raises(api.TwirpError, match="Conflicting inbound SIP Trunks"):
        await lk.sip.create_inbound_trunk(
            api.CreateSIPInboundTrunkRequest(
                trunk=api.SIPInboundTrunkInfo(name="other", numbers=[number])
            )
        )
    again = await sync_inbound(lk, InboundRoute(number=number, agent_name="agent-a"))
    assert again == synced


async def test_duplicate_outbound_trunks_left_by_earlier_runs_are_removed_by_the_next_sync(
    phone_stack: PhoneStack, lk: api.LiveKitAPI
) -> None:
    name = OUTBOUND_PREFIX + "dup-test"
    for _ in range(2):  # as two racing or crashed runs could leave behind
        await lk.sip.create_outbound_trunk(
            api.CreateSIPOutboundTrunkRequest(
                trunk=api.SIPOutboundTrunkInfo(
                    name=name, address="127.0.0.1:5998", numbers=["+15550155"]
                )
            )
        )
    kept = await sync_outbound(
        lk, OutboundTrunk(name="dup-test", address="127.0.0.1:5997", number="+15550155")
    )
    trunks = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    assert [(t.sip_trunk_id, t.address) for t in trunks if t.name == name] == [
        (kept, "127.0.0.1:5997")
    ]


def _sync_command(
    phone_stack: PhoneStack, config: Path, telephony: dict[str, Any]
) -> dict[str, Any]:
    """`python -m functions.telephony sync`, as an operator runs it after a config push."""
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["telephony"] = telephony
    config.write_text(yaml.safe_dump(data))
    env = phone_stack.stack.base_env() | {
        "VOICE_CONFIG_URI": str(config),
        "VOICE_SIP_PASSWORD": "trunk-pw-not-for-logs",
    }
    done = subprocess.run(
        [sys.executable, "-m", "functions.telephony", "sync"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "trunk-pw-not-for-logs" not in done.stdout + done.stderr
    return dict(json.loads(done.stdout))


async def test_the_sync_command_makes_livekit_match_the_config_and_drops_removed_numbers(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, tmp_path: Path
) -> None:
    numbers = [
        {"number": "+15550100", "user": "dev"},
        {"number": "+15550201", "user": "dev", "greeting": "Say: bakery, good morning."},
    ]
    outbound = {"address": "127.0.0.1:5996", "number": "+15550100", "username": "agent"}
    first = _sync_command(
        phone_stack,
        tmp_path / "a.yaml",
        {"enabled": True, "inbound": numbers, "outbound": outbound},
    )
    assert sorted(s["number"] for s in first["inbound"]) == ["+15550100", "+15550201"]
    _, rules = await inbound_named(lk, INBOUND_PREFIX + "+15550201")
    (agent,) = rules[0].room_config.agents
    told = DispatchMetadata.parse(agent.metadata)
    assert (told.session_id, told.greeting) == ("", "Say: bakery, good morning.")
    assert told.phone is not None and told.phone.number == "+15550201"
    trunks = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    (trunk,) = [t for t in trunks if t.sip_trunk_id == first["outbound_trunk_id"]]
    assert (trunk.address, trunk.auth_username) == ("127.0.0.1:5996", "agent")

    second = _sync_command(
        phone_stack, tmp_path / "b.yaml", {"enabled": True, "inbound": numbers[:1]}
    )
    assert second["removed_numbers"] == ["+15550201"]
    assert await inbound_named(lk, INBOUND_PREFIX + "+15550201") == ([], [])
    assert [s["number"] for s in second["inbound"]] == ["+15550100"]
