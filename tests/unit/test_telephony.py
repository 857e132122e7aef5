"""Telephony config, phone room naming and the phone tools an agent gets, without a network."""

from __future__ import annotations

import pytest
import yaml

from infra.local.paths import CONFIG_FILE
from voice.config import ConfigError, load_config, parse_config
from voice.metadata import DispatchMetadata, PhoneLeg
from voice.rooms import room_name_for, session_id_from_room
from worker.agents import CallData, first_agent
from worker.settings import WorkerEnv


def _telephony(**section: object) -> str:
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["telephony"] = {"enabled": True, **section}
    return yaml.safe_dump(data)


def test_the_repo_config_answers_the_local_number_for_the_dev_user() -> None:
    telephony = load_config(str(CONFIG_FILE), env={}).config.realtime.telephony
    assert telephony.enabled
    route = telephony.route_for("+15550100")
    assert route is not None and route.user == "dev"
    assert telephony.route_for("+15550999") is None


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"inbound": [{"number": "555-0100", "user": "dev"}]},
            "voice.realtime.telephony.inbound.0.number",
        ),
        (
            {
                "inbound": [
                    {"number": "+15550100", "user": "a"},
                    {"number": "+15550100", "user": "b"},
                ]
            },
            "lists +15550100 twice",
        ),
        (
            {"inbound": [{"number": "+15550100", "user": "dev", "voice_profile": "nobody"}]},
            "inbound.0.voice_profile: 'nobody' is not a configured profile",
        ),
        (
            {
                "outbound": {
                    "address": "sip.example.com:5060",
                    "number": "+15550100",
                    "password": "x",
                }
            },
            "voice.realtime.telephony.outbound.password: is not a known key",
        ),
        ({"outbound": {"address": "sip.example.com", "number": "+1"}}, "outbound.number"),
    ],
)
def test_a_bad_telephony_section_names_what_to_fix(section: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_telephony(**section), "cfg.yaml", env={})
    assert expected in str(err.value)


def test_a_phone_rooms_session_id_is_the_same_wherever_it_is_derived() -> None:
    room = "phone-_+15550123_AbCdEf"
    first = session_id_from_room(room)
    assert first is not None and first == session_id_from_room(room)
    assert session_id_from_room("phone-_+15550123_Other") != first
    # Web sessions keep their id in the room name, as before.
    assert session_id_from_room(room_name_for("dev", first)) == first


def _call_data(phone: PhoneLeg | None, transfer_to: str | None = None) -> CallData:
    config = parse_config(_telephony(transfer_to=transfer_to), "cfg.yaml", env={})
    dispatch = DispatchMetadata(
        session_id="s1",
        agent_type="single_agent",
        initial_greeting=True,
        instructions="You answer the phone for a bakery.",
        phone=phone,
    )
    return CallData(config=config, dispatch=dispatch, env=WorkerEnv.from_env({}))


def _tool_names(data: CallData) -> set[str]:
    return {getattr(t, "id", "") for t in first_agent(data).tools}


INBOUND = PhoneLeg(direction="inbound", number="+15550100", remote="+15550123")


def test_a_phone_calls_agent_can_hang_up_and_follows_the_calls_own_instructions() -> None:
    data = _call_data(INBOUND)
    assert "end_call" in _tool_names(data)
    assert "transfer_call" not in _tool_names(data)
    # The number's instructions follow the agent's configured ones, as a web call's own do.
    instructions = first_agent(data).instructions
    assert instructions.startswith(data.config.realtime.agent.instructions.strip()[:40])
    assert "\n\nYou answer the phone for a bakery." in instructions


def test_transfer_is_offered_only_when_a_number_to_transfer_to_is_configured() -> None:
    assert "transfer_call" in _tool_names(_call_data(INBOUND, transfer_to="+15550111"))


def test_a_web_sessions_agent_has_no_phone_tools() -> None:
    assert not {"end_call", "transfer_call"} & _tool_names(_call_data(None))
