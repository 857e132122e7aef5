"""`python -m functions.telephony sync`: LiveKit's SIP trunks and dispatch rules made to match the config.

Run by the local stack on start and by an operator after each config push. Idempotent: a second run
changes nothing; numbers removed from the config lose their trunk and rule.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from pydantic import BaseModel

from functions.sessions.phone import inbound_dispatch
from functions.settings import Settings, get_settings
from functions.store.livekit import livekit_api
from functions.store.sip import (
    InboundRoute,
    OutboundTrunk,
    SyncedInbound,
    prune_inbound,
    sync_inbound,
    sync_outbound,
)
from voice.config import get_config
from voice.config.schema import RealtimeSettings
from voice.rooms import PHONE_ROOM_PREFIX

PASSWORD_ENV = "VOICE_SIP_PASSWORD"
# In AWS the trunk password sits in Secrets Manager (the template's SipTrunkPasswordSecretArn).
PASSWORD_ARN_ENV = "VOICE_SIP_PASSWORD_ARN"


class SyncResult(BaseModel):
    inbound: list[SyncedInbound] = []
    outbound_trunk_id: str | None = None
    removed_numbers: list[str] = []


def inbound_routes(realtime: RealtimeSettings) -> list[InboundRoute]:
    telephony = realtime.telephony
    if not telephony.enabled:
        return []
    return [
        InboundRoute(
            number=entry.number,
            agent_name=realtime.worker.agent_name,
            dispatch_metadata=inbound_dispatch(realtime, entry).to_json(),
            room_prefix=PHONE_ROOM_PREFIX,
        )
        for entry in telephony.inbound
    ]


def outbound_trunk(realtime: RealtimeSettings, password: str) -> OutboundTrunk | None:
    spec = realtime.telephony.outbound
    if not realtime.telephony.enabled or spec is None:
        return None
    return OutboundTrunk(
        address=spec.address,
        number=spec.number,
        transport=spec.transport,
        username=spec.username,
        password=password,
    )


async def sync(settings: Settings, realtime: RealtimeSettings, password: str = "") -> SyncResult:
    routes = inbound_routes(realtime)
    trunk = outbound_trunk(realtime, password)
    # Trunk changes can take a while on a busy SIP service: a longer bound than room calls.
    async with livekit_api(settings.livekit, max(settings.livekit_timeout_seconds, 15.0)) as lk:
        removed = await prune_inbound(lk, {r.number for r in routes})
        synced = [await sync_inbound(lk, route) for route in routes]
        trunk_id = await sync_outbound(lk, trunk) if trunk is not None else None
    return SyncResult(inbound=synced, outbound_trunk_id=trunk_id, removed_numbers=removed)


def trunk_password(env: dict[str, str]) -> str:
    if env.get(PASSWORD_ARN_ENV):
        from functions.settings import _secret_from_arn

        return _secret_from_arn(env[PASSWORD_ARN_ENV])
    return env.get(PASSWORD_ENV, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.telephony")
    parser.add_argument(
        "command", choices=["sync"], help="make LiveKit's SIP side match the config"
    )
    parser.parse_args(argv)
    realtime = get_config().config.voice.realtime
    result = asyncio.run(sync(get_settings(), realtime, trunk_password(dict(os.environ))))
    print(json.dumps(result.model_dump(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
