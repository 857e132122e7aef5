"""LiveKit's SIP side: trunks and dispatch rules kept in line with the config, and placing calls.

Each object is found again by its name (`voice-in <number>`, `voice-out <name>`): a second run
updates it in place (and removes duplicates a crashed run may have left) instead of adding another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

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


_Info = TypeVar("_Info", api.SIPInboundTrunkInfo, api.SIPOutboundTrunkInfo, api.SIPDispatchRuleInfo)


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
    trunks = (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
    trunk_id = await _upsert(
        trunk,
        "sip_trunk_id",
        [t.sip_trunk_id for t in trunks if t.name == name],
        update=lk.sip.update_inbound_trunk,
        create=lambda t: lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=t)),
        delete=lambda id_: lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=id_)),
    )
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
    rules = (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    rule_id = await _upsert(
        rule,
        "sip_dispatch_rule_id",
        [r.sip_dispatch_rule_id for r in rules if r.name == name],
        update=lk.sip.update_dispatch_rule,
        create=lambda r: lk.sip.create_dispatch_rule(
            api.CreateSIPDispatchRuleRequest(dispatch_rule=r)
        ),
        delete=lambda id_: lk.sip.delete_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=id_)
        ),
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
    trunks = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    return await _upsert(
        trunk,
        "sip_trunk_id",
        [t.sip_trunk_id for t in trunks if t.name == name],
        update=lk.sip.update_outbound_trunk,
        create=lambda t: lk.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=t)),
        delete=lambda id_: lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=id_)),
    )


async def _upsert(
    info: _Info,
    id_field: str,
    ids: list[str],
    update: Callable[[str, _Info], Awaitable[Any]],
    create: Callable[[_Info], Awaitable[Any]],
    delete: Callable[[str], Awaitable[Any]],
) -> str:
    """Replaces the first of `ids` with `info` (or creates it) and deletes the rest.

    LiveKit refuses a second inbound trunk for a number, but not a second outbound trunk or
    rule of the same name, which a crashed or racing run can leave behind.
    """
    if not ids:
        return str(getattr(await create(info), id_field))
    setattr(info, id_field, ids[0])
    await update(ids[0], info)
    for extra in ids[1:]:
        await delete(extra)
    return ids[0]


async def prune_inbound(lk: api.LiveKitAPI, keep: set[str]) -> list[str]:
    """Deletes our inbound trunks and rules for numbers no longer in `keep`; returns the numbers.

    Only objects named `voice-in …` are ours: anything else on the LiveKit project is left alone.
    """
    removed: set[str] = set()
    rules = (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    for rule in rules:
        number = rule.name.removeprefix(INBOUND_PREFIX)
        if rule.name.startswith(INBOUND_PREFIX) and number not in keep:
            await lk.sip.delete_dispatch_rule(
                api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
            )
            removed.add(number)
    trunks = (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
    for trunk in trunks:
        number = trunk.name.removeprefix(INBOUND_PREFIX)
        if trunk.name.startswith(INBOUND_PREFIX) and number not in keep:
            await lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
            removed.add(number)
    return sorted(removed)


async def outbound_trunk_id(lk: api.LiveKitAPI, name: str = "default") -> str | None:
    trunks = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    return next((t.sip_trunk_id for t in trunks if t.name == OUTBOUND_PREFIX + name), None)
