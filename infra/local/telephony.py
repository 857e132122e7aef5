"""Keeps LiveKit's SIP trunks and dispatch rules in line with what we want, idempotently.

Each object is found again by its name (`voice-in <number>`, `voice-out <name>`): a second run
updates it in place (and removes duplicates a crashed run may have left) instead of adding another.
"""

from __future__ import annotations

from typing import Literal

from livekit import api
from pydantic import BaseModel, ConfigDict, Field

INBOUND_PREFIX = "voice-in "
OUTBOUND_PREFIX = "voice-out "
TRANSPORTS = {
    "auto": api.SIPTransport.SIP_TRANSPORT_AUTO,
    "udp": api.SIPTransport.SIP_TRANSPORT_UDP,
    "tcp": api.SIPTransport.SIP_TRANSPORT_TCP,
    "tls": api.SIPTransport.SIP_TRANSPORT_TLS,
}


class InboundRoute(BaseModel):
    """Calls to `number` get a room of their own (`room_prefix…`) with `agent_name` dispatched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: str = Field(min_length=1)
    agent_name: str = Field(min_length=1)
    dispatch_metadata: str = ""  # the agent job's metadata (a DispatchMetadata JSON)
    room_prefix: str = "call-"


class OutboundTrunk(BaseModel):
    """Where the agent's outbound calls go (a SIP trunk provider, or a phone in tests)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    address: str = Field(min_length=1)  # host:port
    number: str = Field(min_length=1)  # caller id
    transport: Literal["auto", "udp", "tcp", "tls"] = "auto"
    username: str = ""
    password: str = Field(default="", repr=False)


class SyncedInbound(BaseModel):
    number: str
    trunk_id: str
    rule_id: str


async def sync_inbound(lk: api.LiveKitAPI, route: InboundRoute) -> SyncedInbound:
    """Creates or replaces the inbound trunk for `route.number` and its dispatch rule."""
    name = INBOUND_PREFIX + route.number
    trunk = api.SIPInboundTrunkInfo(name=name, numbers=[route.number])
    existing = [
        t
        for t in (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
        if t.name == name
    ]
    if existing:
        trunk_id = existing[0].sip_trunk_id
        trunk.sip_trunk_id = trunk_id
        await lk.sip.update_inbound_trunk(trunk_id, trunk)
    else:
        created = await lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk))
        trunk_id = created.sip_trunk_id
    for extra in existing[1:]:
        await lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=extra.sip_trunk_id))

    rule = api.SIPDispatchRuleInfo(
        name=name,
        trunk_ids=[trunk_id],
        rule=api.SIPDispatchRule(
            dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=route.room_prefix)
        ),
        # The rule's room configuration dispatches the agent when the call creates the room.
        room_config=api.RoomConfiguration(
            agents=[
                api.RoomAgentDispatch(agent_name=route.agent_name, metadata=route.dispatch_metadata)
            ]
        ),
    )
    rules = [
        r
        for r in (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
        if r.name == name
    ]
    if rules:
        rule_id = rules[0].sip_dispatch_rule_id
        rule.sip_dispatch_rule_id = rule_id
        await lk.sip.update_dispatch_rule(rule_id, rule)
    else:
        created_rule = await lk.sip.create_dispatch_rule(
            api.CreateSIPDispatchRuleRequest(dispatch_rule=rule)
        )
        rule_id = created_rule.sip_dispatch_rule_id
    for extra in rules[1:]:
        await lk.sip.delete_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=extra.sip_dispatch_rule_id)
        )
    return SyncedInbound(number=route.number, trunk_id=trunk_id, rule_id=rule_id)


async def sync_outbound(lk: api.LiveKitAPI, spec: OutboundTrunk) -> str:
    """Creates or replaces the outbound trunk named `spec.name`; returns its id."""
    name = OUTBOUND_PREFIX + spec.name
    trunk = api.SIPOutboundTrunkInfo(
        name=name,
        address=spec.address,
        numbers=[spec.number],
        transport=TRANSPORTS[spec.transport],
        auth_username=spec.username,
        auth_password=spec.password,
    )
    existing = [
        t
        for t in (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
        if t.name == name
    ]
    if existing:
        trunk_id = existing[0].sip_trunk_id
        trunk.sip_trunk_id = trunk_id
        await lk.sip.update_outbound_trunk(trunk_id, trunk)
    else:
        created = await lk.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
        trunk_id = created.sip_trunk_id
    for extra in existing[1:]:
        await lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=extra.sip_trunk_id))
    return trunk_id
